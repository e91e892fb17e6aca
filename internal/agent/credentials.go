package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"strata.dev/strata/internal/controller"
)

// The agent keeps its credentials in the cluster it manages, so a restart
// needs no new join token.
const (
	// DefaultCredentialsNamespace holds the agent's credentials Secret
	// unless told otherwise.
	DefaultCredentialsNamespace = "strata-system"
	// CredentialsSecret is that Secret's name.
	CredentialsSecret = "strata-agent"
)

// Join is what `strata cluster join-command` hands to the agent.
type Join struct {
	// Server is the management plane's API URL, as the agent reaches it.
	Server string
	// CAData is the management plane's serving CA (PEM); empty trusts the
	// system's roots.
	CAData []byte
	// Cluster is the agent-mode Cluster the agent serves.
	Cluster types.NamespacedName
	// Token is the one-time join token.
	Token string
}

// Command is the command line that starts an agent with this join token.
func (j Join) Command() string {
	cmd := fmt.Sprintf("strata agent --server %s --cluster %s/%s --token %s", j.Server, j.Cluster.Namespace, j.Cluster.Name, j.Token)
	if len(j.CAData) > 0 {
		cmd += " --certificate-authority-data " + base64.StdEncoding.EncodeToString(j.CAData)
	}
	return cmd
}

// ErrNoServiceAccount: the manager has not made the agent's identity yet.
var ErrNoServiceAccount = errors.New("no ServiceAccount")

// NewJoin mints a join token for an agent-mode cluster's agent, valid for
// ttl and only until an agent registers with it. mgmt is the caller's
// access to the management plane; server is the URL the agent is to use
// (mgmt's host when empty).
func NewJoin(ctx context.Context, mgmt *rest.Config, cluster types.NamespacedName, server string, ttl time.Duration) (Join, error) {
	cs, err := kubernetes.NewForConfig(mgmt)
	if err != nil {
		return Join{}, err
	}
	sa := controller.AgentServiceAccount(cluster.Name)
	// The manager makes the ServiceAccount once it sees the Cluster in
	// agent mode; a join-command right after `strata apply` waits for it.
	var lastErr error
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, lastErr = cs.CoreV1().ServiceAccounts(cluster.Namespace).Get(ctx, sa, metav1.GetOptions{}); lastErr == nil {
			break
		}
		if !apierrors.IsNotFound(lastErr) || time.Now().After(deadline) {
			if apierrors.IsNotFound(lastErr) {
				return Join{}, fmt.Errorf("cluster %s: %w %s yet: is the Cluster in mode agent, and is the manager running?", cluster, ErrNoServiceAccount, sa)
			}
			return Join{}, fmt.Errorf("cluster %s: %w", cluster, lastErr)
		}
		select {
		case <-ctx.Done():
			return Join{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	// The token is bound to a Secret: the agent deletes it on
	// registering, which ends the token — it serves once. A join-command
	// run again makes a fresh Secret, ending any earlier token.
	secrets := cs.CoreV1().Secrets(cluster.Namespace)
	name := controller.AgentJoinSecret(cluster.Name)
	if err := secrets.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return Join{}, fmt.Errorf("join Secret %s/%s: %w", cluster.Namespace, name, err)
	}
	bound, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.Namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "strata", "strata.dev/cluster": cluster.Name}}}, metav1.CreateOptions{})
	if err != nil {
		return Join{}, fmt.Errorf("join Secret %s/%s: %w", cluster.Namespace, name, err)
	}
	seconds := int64(ttl / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(cluster.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Secret", Name: bound.Name, UID: bound.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return Join{}, fmt.Errorf("join token for %s/%s: %w", cluster.Namespace, sa, err)
	}
	if server == "" {
		server = mgmt.Host
	}
	return Join{Server: server, CAData: mgmt.CAData, Cluster: cluster, Token: tr.Status.Token}, nil
}

// credentials are the agent's own: its long-lived token, renewed before it
// expires. They are kept in the managed cluster and in memory, never
// logged.
type credentials struct {
	server  string
	caData  []byte
	cluster types.NamespacedName
	// kept is the Secret of the managed cluster holding them.
	kept types.NamespacedName
	// wrap, when set, wraps every request to the management plane (a load
	// test counts them).
	wrap func(http.RoundTripper) http.RoundTripper

	// transport is the agent's own pool of connections to the management
	// plane, made once.
	transport     http.RoundTripper
	transportErr  error
	transportOnce sync.Once

	mu      sync.RWMutex
	token   string
	expires time.Time
}

func (c *credentials) current() (string, time.Time) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token, c.expires
}

func (c *credentials) expiry() time.Time {
	_, expires := c.current()
	return expires
}

func (c *credentials) set(token string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.expires = token, expires
}

// config reaches the management plane as the agent, with whatever token
// is current at each request.
func (c *credentials) config() *rest.Config {
	cfg := &rest.Config{Host: c.server, UserAgent: "strata-agent"}
	if t, err := c.connections(); err == nil {
		cfg.Transport = t
	} else {
		// The same error is met, and told, when a client is made.
		cfg.TLSClientConfig = rest.TLSClientConfig{CAData: c.caData}
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &bearer{creds: c, next: rt} })
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &backoffOn429{next: rt, pause: pause} })
	if c.wrap != nil {
		cfg.Wrap(c.wrap)
	}
	return cfg
}

// connections is the agent's transport to the management plane, shared by
// all its clients and by no other agent. client-go would share one between
// every client of a process that trusts the same CA: the hollow agents of a
// load test would then share a few connections, and the API server would
// see neither the connections nor the TLS handshakes of a real fleet, one
// agent per machine.
//
// Responses are not compressed: an agent reads small objects (its Cluster,
// the versions of a few profiles) and holds its watches open for an hour,
// and each compressed watch holds a decompressor's 32 KiB window for as
// long; for ten thousand agents, the memory outweighs the bytes saved.
func (c *credentials) connections() (http.RoundTripper, error) {
	c.transportOnce.Do(func() {
		c.transport, c.transportErr = transport.New(&transport.Config{
			TLS:                transport.TLSConfig{CAData: c.caData},
			DisableCompression: true,
			// A proxy keeps client-go from sharing the transport with the
			// process's other clients of the same server (see above).
			Proxy: http.ProxyFromEnvironment,
		})
	})
	return c.transport, c.transportErr
}

type bearer struct {
	creds *credentials
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	token, _ := b.creds.current()
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return b.next.RoundTrip(req)
}

// requestToken asks the management plane for a new token of the agent's
// ServiceAccount, as whoever cfg authenticates (the join token, or the
// agent's current token).
func requestToken(ctx context.Context, cfg *rest.Config, cluster types.NamespacedName, lifetime time.Duration) (string, time.Time, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", time.Time{}, err
	}
	seconds := int64(lifetime / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(cluster.Namespace).CreateToken(ctx, controller.AgentServiceAccount(cluster.Name),
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// register trades a join token for the agent's own token and burns the
// join token.
// rbacSettles bounds the wait for the agent's Roles to take effect.
const rbacSettles = 30 * time.Second

func ignoreForbidden(err error) error {
	if apierrors.IsForbidden(err) {
		return nil
	}
	return err
}

func register(ctx context.Context, join Join, lifetime time.Duration, kept types.NamespacedName) (*credentials, error) {
	creds := &credentials{server: join.Server, caData: join.CAData, cluster: join.Cluster, kept: kept}
	creds.set(join.Token, time.Time{})
	cfg := creds.config()
	// The manager applies the agent's Roles with its ServiceAccount: a join
	// token made at once may be refused for a moment, until the API
	// server's authorizer sees them.
	var token string
	var expires time.Time
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, rbacSettles, true, func(ctx context.Context) (bool, error) {
		var err error
		token, expires, err = requestToken(ctx, cfg, join.Cluster, lifetime)
		return err == nil, ignoreForbidden(err)
	})
	if wait.Interrupted(err) {
		// Still forbidden: say so, with the server's words.
		_, _, err = requestToken(ctx, cfg, join.Cluster, lifetime)
	}
	if err != nil {
		if apierrors.IsUnauthorized(err) {
			return nil, fmt.Errorf("join token refused by %s: it was used already, expired, or a newer join-command replaced it: run `strata cluster join-command %s -n %s` again", join.Server, join.Cluster.Name, join.Cluster.Namespace)
		}
		return nil, fmt.Errorf("registering with %s as cluster %s: %w", join.Server, join.Cluster, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := cs.CoreV1().Secrets(join.Cluster.Namespace).Delete(ctx, controller.AgentJoinSecret(join.Cluster.Name), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("burning the join token: %w", err)
	}
	creds.set(token, expires)
	return creds, nil
}

// store keeps the credentials in the managed cluster.
func (c *credentials) store(ctx context.Context, workload kubernetes.Interface) error {
	if workload == nil {
		// A hollow agent has no cluster: it keeps them in memory.
		return nil
	}
	token, expires := c.current()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.kept.Namespace}}
	if _, err := workload.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("namespace %s: %w", c.kept.Namespace, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: c.kept.Name, Namespace: c.kept.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "strata"}},
		Data: map[string][]byte{
			"server": []byte(c.server), "ca.crt": c.caData, "token": []byte(token),
			"expires": []byte(expires.UTC().Format(time.RFC3339)), "cluster": []byte(c.cluster.String()),
		},
	}
	secrets := workload.CoreV1().Secrets(c.kept.Namespace)
	_, err := secrets.Update(ctx, secret, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", c.kept, err)
	}
	return nil
}

// errNotRegistered: no join token given, and none used before.
var errNotRegistered = errors.New("this cluster's agent has not registered: start it with the command `strata cluster join-command NAME -n NAMESPACE` prints")

// loadCredentials reads the credentials a registered agent kept.
func loadCredentials(ctx context.Context, workload kubernetes.Interface, cluster, kept types.NamespacedName) (*credentials, error) {
	if workload == nil {
		return nil, errNotRegistered
	}
	s, err := workload.CoreV1().Secrets(kept.Namespace).Get(ctx, kept.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errNotRegistered
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", kept, err)
	}
	if got := string(s.Data["cluster"]); got != cluster.String() {
		return nil, fmt.Errorf("secret %s holds the credentials of cluster %s, not %s: this cluster has another agent", kept, got, cluster)
	}
	expires, err := time.Parse(time.RFC3339, string(s.Data["expires"]))
	if err != nil {
		return nil, fmt.Errorf("secret %s: data.expires: want an RFC 3339 time", kept)
	}
	creds := &credentials{server: string(s.Data["server"]), caData: s.Data["ca.crt"], cluster: cluster, kept: kept}
	creds.set(string(s.Data["token"]), expires)
	return creds, nil
}

// renew replaces the token when most of its life is spent, as long as ctx
// lasts; a management plane that is away is asked again each minute.
func (c *credentials) renew(ctx context.Context, workload kubernetes.Interface, lifetime time.Duration, failed func(error)) {
	for {
		_, expires := c.current()
		wait := time.Until(expires) * 4 / 5
		if wait < time.Second {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		for {
			token, newExpiry, err := requestToken(ctx, c.config(), c.cluster, lifetime)
			if err == nil {
				c.set(token, newExpiry)
				err = c.store(ctx, workload)
			}
			if err == nil {
				break
			}
			failed(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}
