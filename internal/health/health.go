// Package health checks roll-out health gates: an object of a workload
// cluster must be Current by kstatus, or pass a CEL condition written as
// Kubernetes validation rules are, with the live object bound to self.
package health

import (
	"context"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "strata.dev/strata/api/v1alpha1"
)

// Getter reads one object of a workload cluster.
type Getter func(ctx context.Context, apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error)

// costLimit bounds what one condition may compute, so a check written
// against a huge object cannot stall the manager.
const costLimit = 1_000_000

// Compile compiles a health check's CEL condition with the live
// object bound to self; it must give a bool.
func Compile(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("gives %s: want a bool", t)
	}
	return env.Program(ast, cel.CostLimit(costLimit))
}

// Check reads a health check's object and says whether it passes, and what
// was seen when it does not.
func Check(ctx context.Context, get Getter, hc v1.HealthCheck) (bool, string) {
	o := hc.Object
	what := o.Kind + " " + o.Name
	if o.Namespace != "" {
		what = o.Kind + " " + o.Namespace + "/" + o.Name
	}
	live, err := get(ctx, o.APIVersion, o.Kind, o.Namespace, o.Name)
	if err != nil {
		return false, fmt.Sprintf("%s: %v", what, err)
	}
	if hc.Condition == "" {
		res, err := status.Compute(live)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", what, err)
		}
		if res.Status != status.CurrentStatus {
			return false, fmt.Sprintf("%s is %s: %s", what, res.Status, res.Message)
		}
		return true, ""
	}
	prg, err := Compile(hc.Condition)
	if err != nil {
		return false, fmt.Sprintf("condition %q: %v", hc.Condition, err)
	}
	out, _, err := prg.ContextEval(ctx, map[string]any{"self": live.Object})
	if err != nil {
		// A field not there yet (no status) is a check not passing.
		return false, fmt.Sprintf("%s: condition %q: %v", what, hc.Condition, err)
	}
	if out != types.True {
		return false, fmt.Sprintf("%s: condition %q is false", what, hc.Condition)
	}
	return true, ""
}
