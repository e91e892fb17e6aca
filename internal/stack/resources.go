package stack

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/pack"
)

// checkResources applies packs' resource constraints (pack.json
// constraints.resources) to the cluster's node pools, as Palette checks
// them against machine pools before a cluster is created: the cpu and
// memory a pack needs must fit in every pool its pods may run on, and each
// node must have the disk it needs. Only a local cluster's pools are known;
// elsewhere the constraint is a warning that it was not checked.
func (r *resolver) checkResources() {
	for _, ls := range r.layers {
		p := ls.out.Pack
		if p == nil || p.Constraints == nil || len(p.Constraints.Resources) == 0 || !ls.ok {
			continue
		}
		field := fmt.Sprintf("layer %q", ls.spec.Name)
		if r.preview {
			continue // a profile has no nodes; each cluster using it is checked
		}
		if r.cluster.Spec.Provider != v1.ProviderLocal {
			r.clusterWarning(field, "pack %s states minimum node resources (pack.json constraints.resources) that are not checked: the nodes of an imported cluster are not known here", p.ID())
			continue
		}
		for i, res := range p.Constraints.Resources {
			need, ok := r.resourceNeed(ls, p, i, res)
			if !ok {
				continue
			}
			r.fitPools(ls, p, res.Type, need)
		}
	}
}

// resourceNeed is what one resource constraint asks for, in millicores,
// MiB or GB: the sum of its components' requests times their replicas
// when it lists components (minLimit is then ignored, as in Palette),
// else minLimit.
func (r *resolver) resourceNeed(ls *layerState, p *pack.Pack, i int, res pack.Resource) (float64, bool) {
	if len(res.Components) == 0 {
		return res.MinLimit, res.MinLimit > 0
	}
	field := fmt.Sprintf("layer %q", ls.spec.Name)
	var total float64
	for j, c := range res.Components {
		where := fmt.Sprintf("pack.json constraints.resources[%d].components[%d]", i, j)
		request, ok := pack.Lookup(ls.out.Values, c.ResourceRequestParamRef)
		if !ok || request == nil || request == "" {
			// No request set: the component asks for nothing the scheduler counts.
			continue
		}
		amount, err := quantity(request)
		if err != nil {
			r.clusterWarning(field, "pack %s %s: value %q: %v; the constraint is not checked", p.ID(), where, c.ResourceRequestParamRef, err)
			return 0, false
		}
		replicas := 1.0
		if c.ReplicaCountParamRef != "" {
			if v, ok := pack.Lookup(ls.out.Values, c.ReplicaCountParamRef); ok && v != nil {
				n, err := quantity(v)
				if err != nil {
					r.clusterWarning(field, "pack %s %s: value %q: %v; the constraint is not checked", p.ID(), where, c.ReplicaCountParamRef, err)
					return 0, false
				}
				replicas = n.AsApproximateFloat64()
			}
		}
		switch res.Type {
		case pack.ResourceCPU:
			total += float64(amount.MilliValue()) * replicas
		case pack.ResourceMemory:
			total += amount.AsApproximateFloat64() / (1 << 20) * replicas
		case pack.ResourceDiskSize:
			total += amount.AsApproximateFloat64() / 1e9 * replicas
		}
	}
	return total, total > 0
}

// fitPools reports each node pool that cannot hold the need.
func (r *resolver) fitPools(ls *layerState, p *pack.Pack, typ pack.ResourceType, need float64) {
	pools := r.cluster.Spec.NodePools
	if len(pools) == 0 {
		pools = []v1.NodePool{{Name: "default", Count: 1}}
	}
	for i, pool := range pools {
		if pool.Count == 0 {
			continue
		}
		cpu, memory, disk := NodeCapacity(pool)
		var have float64
		var unit, what string
		switch typ {
		case pack.ResourceCPU:
			have, unit, what = float64(cpu.MilliValue())*float64(pool.Count), "m CPU", "its nodes together offer"
		case pack.ResourceMemory:
			have, unit, what = memory.AsApproximateFloat64()/(1<<20)*float64(pool.Count), " MiB of memory", "its nodes together offer"
		case pack.ResourceDiskSize:
			have, unit, what = disk.AsApproximateFloat64()/1e9, " GB of disk", "each node has"
		}
		if have < need {
			r.clusterFinding(fmt.Sprintf("spec.nodePools[%d]", i), "pool %q is too small for layer %q: pack %s needs %s%s, %s %s%s", pool.Name, ls.spec.Name, p.ID(), number(need), unit, what, number(have), unit)
		}
	}
}

// Default capacity of a node of a local node pool, as the simulated nodes
// of a local cluster have it.
var (
	DefaultNodeCPU      = resource.MustParse("32")
	DefaultNodeMemory   = resource.MustParse("256Gi")
	DefaultNodeDiskSize = resource.MustParse("100Gi")
)

// NodeCapacity is what each node of the pool offers.
func NodeCapacity(p v1.NodePool) (cpu, memory, disk resource.Quantity) {
	cpu, memory, disk = DefaultNodeCPU, DefaultNodeMemory, DefaultNodeDiskSize
	if p.CPU != nil {
		cpu = *p.CPU
	}
	if p.Memory != nil {
		memory = *p.Memory
	}
	if p.DiskSize != nil {
		disk = *p.DiskSize
	}
	return cpu, memory, disk
}

func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// quantity reads a request or count as Kubernetes writes it: 250m, 1.5,
// 512Mi, 2.
func quantity(v any) (resource.Quantity, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case int, int64:
		s = fmt.Sprint(x)
	default:
		return resource.Quantity{}, fmt.Errorf("want a quantity such as 250m or 512Mi, got %v", v)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("%q is not a quantity such as 250m or 512Mi", s)
	}
	return q, nil
}
