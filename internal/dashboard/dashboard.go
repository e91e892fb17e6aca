// Package dashboard serves the fleet in a browser: clusters, one cluster's
// stack and pending plan (with an Approve button), profiles and their
// versions, and an inventory of what runs where. Pages are rendered on the
// server from html/template with the assets embedded (no CDN: the machine
// may be air-gapped) and refresh themselves when the fleet changes
// (server-sent events). Every request acts as its user — a bearer token —
// so Kubernetes RBAC decides what they see and whether they may approve.
package dashboard

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1 "strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/controller"
	"strata.dev/strata/internal/packview"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// tokenCookie keeps a token a user signed in with.
const tokenCookie = "strata_token"

// Options say whom a dashboard acts for and under which names it is served.
type Options struct {
	// Config reaches the management plane. Each request's client is made
	// from its address and CA with the user's bearer token.
	Config *rest.Config
	// Local lets requests without a token act with Config's own
	// credentials: `strata up`, listening on loopback for its one user.
	Local bool
	// Listen is the address the dashboard listens on. In local mode only
	// the loopback names on its port (and its own host) are answered.
	Listen string
	// Hosts are further names (host or host:port) it is served under; a
	// request naming any other Host is refused. In team mode, none means
	// any name.
	Hosts []string
	// PackFiles finds packs' logos and READMEs on this machine; without
	// it every pack has its drawn placeholder and no README.
	PackFiles PackFiles
}

// Server serves the dashboard of one management plane.
type Server struct {
	Options

	hosts   []hostName
	csrfKey []byte
	pages   map[string]*template.Template
	// What was made of pack files, by pack folder: made once per pack
	// version, not per request.
	logos    *packview.Memo[[]byte]
	contents *packview.Memo[packContent]
	digests  digestsSeen
}

// New parses the templates once.
func New(opts Options) (*Server, error) {
	s := &Server{Options: opts, hosts: allowedHosts(opts.Local, opts.Listen, opts.Hosts), csrfKey: make([]byte, 32), pages: map[string]*template.Template{},
		logos: packview.NewMemo[[]byte](1024), contents: packview.NewMemo[packContent](256)}
	_, _ = rand.Read(s.csrfKey) // crypto/rand.Read never fails
	funcs := template.FuncMap{"inc": func(i int) int { return i + 1 }, "logo": logoURL}
	for _, page := range []string{"clusters", "cluster", "profiles", "diff", "inventory", "packs", "pack", "rollouts", "error"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", page, err)
		}
		s.pages[page] = t
	}
	return s, nil
}

// Handler routes the dashboard's pages.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.clusters)
	mux.HandleFunc("GET /clusters/{namespace}/{name}", s.cluster)
	mux.HandleFunc("POST /clusters/{namespace}/{name}/approve", s.approve)
	mux.HandleFunc("GET /profiles", s.profiles)
	mux.HandleFunc("GET /profiles/{namespace}/{name}/diff", s.profileDiff)
	mux.HandleFunc("POST /profiles/{namespace}/{name}/publish", s.publish)
	mux.HandleFunc("GET /inventory", s.inventory)
	mux.HandleFunc("GET /packs", s.packs)
	mux.HandleFunc("GET /packs/{name}/{version}", s.packVersion)
	mux.HandleFunc("GET /packs/{name}/{version}/logo", s.packLogo)
	mux.HandleFunc("GET /rollouts", s.rollouts)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /login", s.login)
	return s.guard(mux)
}

// clientFor acts as the request's user.
func (s *Server) clientFor(r *http.Request) (client.WithWatch, error) {
	token := tokenOf(r)
	var cfg *rest.Config
	switch {
	case token != "":
		cfg = rest.AnonymousClientConfig(s.Config)
		cfg.BearerToken = token
	case s.Local:
		cfg = rest.CopyConfig(s.Config)
	default:
		return nil, errUnauthenticated
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: controller.Scheme()})
}

// tokenOf is the bearer token a request carries, in its header or cookie.
func tokenOf(r *http.Request) string {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		if c, err := r.Cookie(tokenCookie); err == nil {
			token = c.Value
		}
	}
	return token
}

var errUnauthenticated = errors.New("sign in: the dashboard acts as you, with a token the management plane accepts")

type page struct {
	Title, Nav string
	// CSRF is the anti-forgery token the page's forms send back.
	CSRF string
}

// newPage starts the data of a page served to r.
func (s *Server) newPage(r *http.Request, title, nav string) page {
	return page{Title: title, Nav: nav, CSRF: s.formToken(r)}
}

// render writes a page, or only its main content when the page's script
// asks for it to refresh in place.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	s.renderStatus(w, r, http.StatusOK, name, data)
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	tmpl := "layout"
	if r.Header.Get("X-Strata-Fragment") == "main" {
		tmpl = "main"
	}
	if err := s.pages[name].ExecuteTemplate(w, tmpl, data); err != nil {
		// The status is sent; say it in the page.
		fmt.Fprintf(w, "<p class=error>dashboard: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

type errorPage struct {
	page
	Message string
	Login   bool
}

// fail shows what went wrong; an API refusal keeps its status code, and an
// unauthenticated request gets the sign-in form.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var status apierrors.APIStatus
	switch {
	case errors.Is(err, errUnauthenticated) || apierrors.IsUnauthorized(err):
		code = http.StatusUnauthorized
	case errors.As(err, &status):
		code = int(status.Status().Code)
	}
	s.renderStatus(w, r, code, "error", errorPage{page: s.newPage(r, http.StatusText(code), ""), Message: err.Error(), Login: code == http.StatusUnauthorized})
}

// login keeps the token in a cookie for the pages that follow.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		s.fail(w, r, errUnauthenticated)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	// A new identity gets a new session, so a token learnt before signing
	// in is worth nothing after.
	s.startSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// events tells the page when clusters or profiles change, watching as the
// user, so nobody learns of changes they may not see.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	c, err := s.clientFor(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx := r.Context()
	changes := make(chan struct{}, 1)
	var watching sync.WaitGroup
	for _, list := range []client.ObjectList{&v1.ClusterList{}, &v1.ClusterProfileList{}} {
		watching.Add(1)
		go watchChanges(ctx, c, list, r.URL.Query().Get("project"), changes, watching.Done)
	}
	// The stream opens once the watches run: a change from then on is told.
	watching.Wait()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, ": live\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-changes:
			// Several changes close together make one refresh.
			time.Sleep(200 * time.Millisecond)
			select {
			case <-changes:
			default:
			}
			fmt.Fprint(w, "event: changed\ndata: {}\n\n")
		}
		flusher.Flush()
	}
}

// watchChanges signals on changes every change to the listed kind until
// ctx ends, starting the watch again when the server ends it. It calls
// started once the first watch runs, or failed to.
func watchChanges(ctx context.Context, c client.WithWatch, list client.ObjectList, project string, changes chan<- struct{}, started func()) {
	var once sync.Once
	defer once.Do(started)
	var opts []client.ListOption
	if project != "" {
		opts = append(opts, client.InNamespace(project))
	}
	for ctx.Err() == nil {
		if err := c.List(ctx, list, opts...); err != nil {
			return
		}
		from := &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}}
		watcher, err := c.Watch(ctx, list, append(opts, from)...)
		if err != nil {
			return
		}
		once.Do(started)
		for range watcher.ResultChan() {
			select {
			case changes <- struct{}{}:
			default:
			}
		}
		watcher.Stop()
	}
}

// Serve serves the dashboard on addr until ctx ends.
func (s *Server) Serve(ctx context.Context, addr string) error {
	web := &http.Server{Addr: addr, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = web.Close()
	}()
	if err := web.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard on %s: %w", addr, err)
	}
	return nil
}

// Runnable serves the dashboard within a controller manager, on every
// replica, leader or not.
func (s *Server) Runnable(addr string) manager.Runnable { return runnable{s, addr} }

type runnable struct {
	s    *Server
	addr string
}

func (r runnable) Start(ctx context.Context) error { return r.s.Serve(ctx, r.addr) }
func (r runnable) NeedLeaderElection() bool        { return false }
