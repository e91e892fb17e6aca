package engine

import (
	"fmt"
	"sort"

	releasecommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// CheckedObjects lists the objects the engine remembers as found applied.
func CheckedObjects(e *Engine) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.checked))
	for k := range e.checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// InterruptUpgrade leaves the record a process killed in the middle of
// an upgrade of a release leaves: the next revision, pending-upgrade.
func InterruptUpgrade(e *Engine, namespace, name string) error {
	cfg, err := e.helm(namespace)
	if err != nil {
		return err
	}
	last, err := cfg.Releases.Last(name)
	if err != nil {
		return err
	}
	rel, ok := last.(*releasev1.Release)
	if !ok {
		return fmt.Errorf("release %s is a %T", name, last)
	}
	next := *rel
	info := *rel.Info
	next.Info, next.Version = &info, rel.Version+1
	next.Info.Status = releasecommon.StatusPendingUpgrade
	return cfg.Releases.Create(&next)
}
