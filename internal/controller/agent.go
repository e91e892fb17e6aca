package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "strata.dev/strata/api/v1alpha1"
)

// An agent-mode cluster is served by two parties. The manager gives the
// agent an identity — a ServiceAccount whose RBAC reaches its own Cluster,
// its project's profiles and the shared ones, nothing else — keeps the
// finalizer, and tells when the agent stops reporting. The agent, the same
// ClusterReconciler run with Agent set, resolves, plans and applies the
// stack on the cluster it runs in and writes the Cluster's status. The
// manager never opens a connection to the cluster.

// AgentServiceAccount names the ServiceAccount, in the cluster's namespace,
// that an agent-mode cluster's agent acts as.
func AgentServiceAccount(cluster string) string { return "strata-agent-" + cluster }

// AgentJoinSecret names the Secret a join token is bound to: deleting it —
// the agent does, once registered — makes the token worthless.
func AgentJoinSecret(cluster string) string { return "strata-agent-join-" + cluster }

// agentSharedRole lets agents read the shared namespace's profiles and
// registries. The agents of a project are bound to it together, by one
// RoleBinding whose subject is the group of the project namespace's
// ServiceAccounts (projectAgentsBinding).
//
// Why not one RoleBinding per agent, as before: the API server's RBAC
// authorizer walks a namespace's RoleBindings on every request there, and
// each agent's watches of the shared profiles and registries are requests
// there. With 10,000 agents, RBAC took 31 % of the API server's CPU at
// rest. What this widens: any ServiceAccount of a project's namespace may
// read the shared profiles and registries, and the Secrets those
// registries name. Whoever can run a pod in that namespace can already
// act as any of its agents, with the same reach.
const agentSharedRole = "strata-agent-shared"

// projectAgentsBinding names the RoleBinding, in the shared namespace,
// that binds the agents of a project to agentSharedRole.
func projectAgentsBinding(namespace string) string { return "strata-agents." + namespace }

// perAgentSharedBinding names the RoleBinding, in the shared namespace, by
// which a manager of an earlier version bound one agent to agentSharedRole.
func perAgentSharedBinding(namespace, cluster string) string {
	return "strata-agent." + namespace + "." + cluster
}

// AgentRole makes a ClusterReconciler the agent of the agent-mode Clusters
// it sees (its cache holds only its own).
type AgentRole struct {
	// Cluster is the agent's own Cluster.
	Cluster types.NamespacedName
	// Heartbeat is how often the agent reports that it is alive.
	Heartbeat time.Duration
	// Version of strata the agent runs, reported in the status.
	Version string
	// Follows, when set, says whether the agent's cache holds the
	// profiles the cluster attaches; when not, the cluster waits for the
	// agent to start again with those.
	Follows func(c *v1.Cluster) bool
}

// AgentState tells how an agent-mode cluster's agent stands, as the
// AgentConnected condition says: "connected", "disconnected" or "not
// registered"; empty for a push-mode cluster.
func AgentState(c *v1.Cluster) string {
	if c.Spec.Mode != v1.ModeAgent {
		return ""
	}
	cond := apimeta.FindStatusCondition(c.Status.Conditions, v1.ConditionAgentConnected)
	switch {
	case cond != nil && cond.Status == metav1.ConditionTrue:
		return "connected"
	case c.Status.Agent == nil:
		return "not registered"
	default:
		return "disconnected"
	}
}

// WakeAgent queues a reconcile of the agent's own Cluster: a registry it
// reads (and does not report on) has synced.
func (r *ClusterReconciler) WakeAgent() {
	if r.Agent != nil {
		r.wakeUp(r.Agent.Cluster)
	}
}

// HeartbeatsMissed is how many heartbeats may go missing before the
// manager shows an agent disconnected: an agent's Lease lasts that many.
const HeartbeatsMissed = 3

// reconcileAgentCluster is the manager's part of an agent-mode cluster.
func (r *ClusterReconciler) reconcileAgentCluster(ctx context.Context, c *v1.Cluster) (ctrl.Result, error) {
	// A cluster just moved from push mode: the manager lets go of it.
	r.dropEngine(c)
	if !c.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(c, Finalizer) {
			return ctrl.Result{}, nil
		}
		agent := c.Status.Agent
		if report := r.agentReportOf(ctx, c); report != nil {
			agent = report.Agent
		}
		if agent != nil && !agent.LayersRemoved && c.Annotations[OrphanAnnotation] != "true" {
			// The agent removes the layers and says so; until then the
			// Cluster stays, and shows how far the agent got. Its report
			// wakes the manager; look again anyway, in case it is of an
			// earlier version.
			if _, err := r.showAgentStatus(ctx, c, r.agentLeaseOf(ctx, c)); err != nil {
				return ctrl.Result{}, err
			}
			return ctrl.Result{RequeueAfter: heartbeatOf(agent)}, nil
		}
		if err := r.removeAgentAccess(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
		controllerutil.RemoveFinalizer(c, Finalizer)
		r.agentAccess.Delete(c.UID)
		return ctrl.Result{}, r.Update(ctx, c)
	}
	if controllerutil.AddFinalizer(c, Finalizer) {
		if err := r.Update(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
	}
	// The agent's access is written once per manager run, and again when
	// the registries' Secrets change: the manager reads none of it back, so
	// a resync costs no request.
	if err := r.ensureAgentAccess(ctx, c); err != nil {
		return ctrl.Result{}, fmt.Errorf("agent access of %s/%s: %w", c.Namespace, c.Name, err)
	}
	next, err := r.showAgentStatus(ctx, c, r.agentLeaseOf(ctx, c))
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// heartbeatOf is the agent's reporting interval.
func heartbeatOf(a *v1.AgentStatus) time.Duration {
	return time.Duration(max(a.HeartbeatSeconds, 1)) * time.Second
}

// agentConnection says whether the agent is heard from at now, and when to
// look again: its Lease renewed within its duration (three heartbeats);
// without a Lease, its last status write within three heartbeats.
func agentConnection(c *v1.Cluster, lease *coordinationv1.Lease, now time.Time) (status metav1.ConditionStatus, reason, message string, next time.Duration) {
	a := c.Status.Agent
	if a == nil {
		return metav1.ConditionFalse, "NotRegistered",
			fmt.Sprintf("no agent has reported yet: start one where it can reach the cluster, with the command `strata cluster join-command %s -n %s` prints", c.Name, c.Namespace),
			time.Minute
	}
	last, period := a.LastHeartbeatTime.Time, heartbeatOf(a)
	if lease != nil && lease.Spec.RenewTime.After(last) {
		last = lease.Spec.RenewTime.Time
		if d := lease.Spec.LeaseDurationSeconds; d != nil && *d > 0 {
			period = time.Duration(*d) * time.Second / HeartbeatsMissed
		}
	}
	deadline := last.Add(HeartbeatsMissed * period)
	if now.After(deadline) {
		return metav1.ConditionFalse, "HeartbeatMissed",
			fmt.Sprintf("no heartbeat since %s: the agent keeps the last desired state it read applied, and reports when it is back", last.UTC().Format(time.RFC3339)),
			period
	}
	return metav1.ConditionTrue, "Heartbeat", "the agent reports", deadline.Sub(now) + time.Second
}

// agentRules are what an agent may do in its cluster's namespace: read and
// report on its own Cluster, renew its own Lease, read the project's
// profiles and registries, renew its own token and burn its join token.
func agentRules(cluster string, registrySecrets []string) []rbacv1.PolicyRule {
	return append(readSecrets(registrySecrets), []rbacv1.PolicyRule{
		{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusters"}, ResourceNames: []string{cluster}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusters/status"}, ResourceNames: []string{cluster}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusterprofiles", "packregistries"}, Verbs: []string{"get", "list", "watch"}},
		// An agent of an earlier version renews its Lease here, beside
		// its Cluster; today's renew theirs in their own namespace.
		leaseRule(cluster),
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, ResourceNames: []string{AgentServiceAccount(cluster)}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{AgentJoinSecret(cluster)}, Verbs: []string{"get", "delete"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}...)
}

// AgentGrants are all the rules the manager grants the agent of cluster,
// in its project's namespace, the shared one and its own, with the
// registry Secrets named. RBAC lets no one grant what it does not hold
// itself: the manager's own role must hold each of them.
func AgentGrants(cluster string, registrySecrets []string) []rbacv1.PolicyRule {
	rules := append(agentRules(cluster, registrySecrets), sharedAgentRules(registrySecrets)...)
	return append(rules, leaseRule(cluster), reportRule(cluster))
}

// leaseRule lets an agent read and renew its Lease, no other.
func leaseRule(cluster string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, ResourceNames: []string{AgentLease(cluster)}, Verbs: []string{"get", "update"}}
}

// sharedAgentRules let agents read the shared profiles and registries, and
// the Secrets those registries name.
func sharedAgentRules(registrySecrets []string) []rbacv1.PolicyRule {
	return append(readSecrets(registrySecrets), rbacv1.PolicyRule{
		APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"clusterprofiles", "packregistries"}, Verbs: []string{"get", "list", "watch"},
	})
}

// readSecrets lets an agent read the named Secrets: the credentials and
// CAs of the pack registries it pulls from, and no other.
func readSecrets(names []string) []rbacv1.PolicyRule {
	if len(names) == 0 {
		return nil
	}
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names, Verbs: []string{"get"}}}
}

// profileSecrets names the Secrets a profile's chart layers take signature
// keys from.
func profileSecrets(p *v1.ClusterProfile) []string {
	var names []string
	for _, l := range p.Spec.Layers {
		if l.Chart != nil {
			names = append(names, secretsNamed(nil, nil, l.Chart.Verify)...)
		}
	}
	return names
}

// registrySecrets names the Secrets the namespace's PackRegistries take
// credentials, CAs and signature keys from, and those its profiles' chart
// layers take signature keys from, sorted.
func (r *ClusterReconciler) registrySecrets(ctx context.Context, namespace string) ([]string, error) {
	var list v1.PackRegistryList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var names []string
	for i := range list.Items {
		names = append(names, secretsNamed(list.Items[i].Spec.CredentialsSecretRef, list.Items[i].Spec.CASecretRef, list.Items[i].Spec.Verify)...)
	}
	var profiles v1.ClusterProfileList
	if err := r.List(ctx, &profiles, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	for i := range profiles.Items {
		names = append(names, profileSecrets(&profiles.Items[i])...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ensureAgentAccess applies the agent's ServiceAccount, Roles and
// RoleBindings, its namespace and its Lease (server-side apply: repeated,
// it changes nothing).
func (r *ClusterReconciler) ensureAgentAccess(ctx context.Context, c *v1.Cluster) error {
	own, err := r.registrySecrets(ctx, c.Namespace)
	if err != nil {
		return err
	}
	shared, err := r.registrySecrets(ctx, SharedNamespace)
	if err != nil {
		return err
	}
	// The project's binding first: its last agent's deletion may have
	// taken it away while this cluster's own access stayed applied.
	if err := r.ensureProjectAgentsBinding(ctx, c.Namespace); err != nil {
		return err
	}
	ownKey, sharedKey := fmt.Sprint(own), fmt.Sprint(shared)
	if done, _ := r.agentAccess.Load(c.UID); done == ownKey {
		if done, _ := r.agentAccess.Load(agentSharedRole); done == sharedKey {
			return nil
		}
	}
	sa := AgentServiceAccount(c.Name)
	labels := map[string]string{"app.kubernetes.io/managed-by": "strata", "strata.dev/cluster": c.Name}
	owned := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: sa, Namespace: c.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(c, v1.GroupVersion.WithKind("Cluster"))}}
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: c.Namespace}}
	objects := []client.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: owned()},
		&rbacv1.Role{TypeMeta: rbacTypeMeta("Role"), ObjectMeta: owned(), Rules: agentRules(c.Name, own)},
		&rbacv1.RoleBinding{TypeMeta: rbacTypeMeta("RoleBinding"), ObjectMeta: owned(), Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa}},
	}
	objects = append(objects, agentNamespaceObjects(c, labels, subject)...)
	if done, _ := r.agentAccess.Load(agentSharedRole); done != sharedKey {
		// One Role for every agent; applied once per manager run, and
		// when the shared registries' Secrets change.
		objects = append(objects, &rbacv1.Role{TypeMeta: rbacTypeMeta("Role"), Rules: sharedAgentRules(shared),
			ObjectMeta: metav1.ObjectMeta{Name: agentSharedRole, Namespace: SharedNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "strata"}}})
	}
	for _, o := range objects {
		//nolint:staticcheck // client.Apply with whole typed objects: the manager owns all of them.
		if err := r.Patch(ctx, o, client.Apply, client.FieldOwner("strata"), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s %s/%s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
	r.agentAccess.Store(agentSharedRole, sharedKey)
	r.agentAccess.Store(c.UID, ownKey)
	return nil
}

// ensureProjectAgentsBinding applies the binding of the project's agents to
// agentSharedRole, once per manager run (and again once the project's last
// agent took it away), and then removes the bindings one per agent that a
// manager of an earlier version made: they grant nothing more and cost
// every request in the shared namespace. One cluster of a project does it
// while the others wait: on an upgrade, each would list them all.
func (r *ClusterReconciler) ensureProjectAgentsBinding(ctx context.Context, namespace string) error {
	key := projectAgentsBinding(namespace)
	if _, done := r.agentAccess.Load(key); done {
		return nil
	}
	r.projectAgents.Lock()
	defer r.projectAgents.Unlock()
	if _, done := r.agentAccess.Load(key); done {
		return nil
	}
	binding := projectAgentsBindingObject(namespace)
	//nolint:staticcheck // client.Apply with a whole typed object: the manager owns it.
	if err := r.Patch(ctx, binding, client.Apply, client.FieldOwner("strata"), client.ForceOwnership); err != nil {
		return fmt.Errorf("RoleBinding %s/%s: %w", binding.Namespace, binding.Name, err)
	}
	if err := r.removePerAgentSharedBindings(ctx, namespace); err != nil {
		return err
	}
	r.agentAccess.Store(key, true)
	return nil
}

// projectAgentsBindingObject binds the agents of the project namespace to
// agentSharedRole, in the shared namespace.
func projectAgentsBindingObject(namespace string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta: rbacTypeMeta("RoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: projectAgentsBinding(namespace), Namespace: SharedNamespace, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "strata", ClusterNamespaceLabel: namespace,
		}},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: serviceaccount.MakeNamespaceGroupName(namespace)}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: agentSharedRole},
	}
}

// removePerAgentSharedBindings deletes the RoleBindings by which a manager
// of an earlier version bound each agent of the project to
// agentSharedRole. It reads them from the API server, not the cache: the
// manager watches no RoleBindings.
func (r *ClusterReconciler) removePerAgentSharedBindings(ctx context.Context, namespace string) error {
	var bindings rbacv1.RoleBindingList
	if err := r.APIReader.List(ctx, &bindings, client.InNamespace(SharedNamespace), client.HasLabels{"strata.dev/cluster"}); err != nil {
		return fmt.Errorf("RoleBindings of agents in %s: %w", SharedNamespace, err)
	}
	for i := range bindings.Items {
		b := &bindings.Items[i]
		cluster := b.Labels["strata.dev/cluster"]
		if b.Name != perAgentSharedBinding(namespace, cluster) || b.RoleRef.Name != agentSharedRole {
			continue
		}
		if err := r.Delete(ctx, b); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("RoleBinding %s/%s: %w", b.Namespace, b.Name, err)
		}
	}
	return nil
}

// otherAgentsIn says whether the project namespace holds an agent-mode
// Cluster other than c that still has the manager's finalizer: its agent
// still needs the project's binding in the shared namespace.
func (r *ClusterReconciler) otherAgentsIn(ctx context.Context, c *v1.Cluster) (bool, error) {
	var clusters v1.ClusterList
	// Read without copies: this runs for each Cluster deleted, and a
	// project may hold thousands.
	if err := r.List(ctx, &clusters, client.InNamespace(c.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	for i := range clusters.Items {
		o := &clusters.Items[i]
		if o.UID != c.UID && o.Spec.Mode == v1.ModeAgent && controllerutil.ContainsFinalizer(o, Finalizer) {
			return true, nil
		}
	}
	return false, nil
}

// agentNamespaceObjects are the agent's namespace (AgentNamespace says why
// it has one), its Lease and its report there (report.go), and the Role and
// RoleBinding that let the agent renew the one and write the other. RBAC
// cannot let an agent create only its own Lease or report: the manager
// makes them, the agent writes them. None has an owner: a Cluster can
// own nothing outside its namespace, so removeAgentAccess deletes them.
func agentNamespaceObjects(c *v1.Cluster, labels map[string]string, subject []rbacv1.Subject) []client.Object {
	ns := AgentNamespace(client.ObjectKeyFromObject(c))
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	nsLabels := maps.Clone(labels)
	nsLabels[ClusterNamespaceLabel] = c.Namespace
	return []client.Object{
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels}},
		&rbacv1.Role{TypeMeta: rbacTypeMeta("Role"), ObjectMeta: meta(agentNamespaceRole), Rules: []rbacv1.PolicyRule{leaseRule(c.Name), reportRule(c.Name)}},
		&rbacv1.RoleBinding{TypeMeta: rbacTypeMeta("RoleBinding"), ObjectMeta: meta(agentNamespaceRole), Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: agentNamespaceRole}},
		agentLeaseObject(c),
		agentReportObject(c),
	}
}

// ClusterNamespaceLabel marks an agent's namespace with its Cluster's
// namespace (and "strata.dev/cluster" with its name).
const ClusterNamespaceLabel = "strata.dev/cluster-namespace"

// agentNamespaceRole names the Role and RoleBinding in an agent's namespace.
const agentNamespaceRole = "strata-agent"

func rbacTypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: kind}
}

// removeAgentAccess deletes what ensureAgentAccess made (the shared Role
// stays for the other agents); the agent's tokens stop working with its
// ServiceAccount. The agent's namespace goes last, after what it holds, so
// nothing is left even where no namespace controller empties it.
func (r *ClusterReconciler) removeAgentAccess(ctx context.Context, c *v1.Cluster) error {
	sa, ns := AgentServiceAccount(c.Name), AgentNamespace(client.ObjectKeyFromObject(c))
	for _, o := range []client.Object{
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: AgentLease(c.Name), Namespace: ns}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: AgentReport(c.Name), Namespace: ns}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: agentNamespaceRole, Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: agentNamespaceRole, Namespace: ns}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: perAgentSharedBinding(c.Namespace, c.Name), Namespace: SharedNamespace}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: c.Namespace}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: c.Namespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: c.Namespace}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: AgentLease(c.Name), Namespace: c.Namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: AgentJoinSecret(c.Name), Namespace: c.Namespace}},
	} {
		if err := r.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	// The project's binding in the shared namespace goes with its last
	// agent. Should a new agent's access have been applied meanwhile, it
	// is applied again at its next reconcile: the project is no longer
	// marked done. A manager of one shard sees only its shard's Clusters,
	// not whether another shard's agents still need it: it leaves it.
	if r.Shard != "" {
		return nil
	}
	if others, err := r.otherAgentsIn(ctx, c); err != nil || others {
		return err
	}
	r.agentAccess.Delete(projectAgentsBinding(c.Namespace))
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: projectAgentsBinding(c.Namespace), Namespace: SharedNamespace}}
	if err := r.Delete(ctx, binding); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// stampAgent marks a status the agent writes: its version and heartbeat,
// and AgentConnected — it is writing, so it is connected.
func (r *ClusterReconciler) stampAgent(c *v1.Cluster, removed bool) {
	c.Status.Agent = &v1.AgentStatus{
		Version: r.Agent.Version, LastHeartbeatTime: metav1.Now(),
		HeartbeatSeconds: int32(r.Agent.Heartbeat / time.Second), LayersRemoved: removed,
	}
	setCondition(c, v1.ConditionAgentConnected, metav1.ConditionTrue, "Heartbeat", "the agent reports")
}
