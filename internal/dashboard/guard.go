package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
)

// sessionCookie names the browser session an anti-forgery token is bound
// to. It carries no authority of its own: the token cookie (team mode) or
// the loopback listener (local mode) does.
const sessionCookie = "strata_session"

// csrfField is the form field (or, for scripts, the header X-Strata-CSRF)
// that carries the anti-forgery token on every state-changing request.
const csrfField = "csrf"

// securityHeaders keep the pages from being framed, from loading anything
// but their own assets, and from leaking their addresses to other sites.
var securityHeaders = map[string]string{
	"Content-Security-Policy":      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

type sessionKey struct{}

// guard is what stands between the routes and every other web page the
// user's browser shows:
//   - a request naming a Host the dashboard is not served under is
//     refused (421), so a page that rebinds its own name to 127.0.0.1 cannot
//     read the dashboard through the browser;
//   - a state-changing request must come from the dashboard's own origin
//     (Sec-Fetch-Site, else Origin against Host: net/http's
//     CrossOriginProtection) and carry the anti-forgery token of its
//     browser session, else 403 and nothing changes.
func (s *Server) guard(next http.Handler) http.Handler {
	crossOrigin := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if !s.hostAllowed(r.Host) {
			http.Error(w, "this dashboard is not served under the name "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		session := ""
		if c, err := r.Cookie(sessionCookie); err == nil && validSession(c.Value) {
			session = c.Value
		}
		if !isSafeMethod(r.Method) {
			if err := crossOrigin.Check(r); err != nil {
				http.Error(w, "refused: the request did not come from the dashboard's own pages", http.StatusForbidden)
				return
			}
			key := s.csrfKeyFor(r)
			if key != nil && (session == "" || !hmac.Equal([]byte(csrfTokenOf(r)), []byte(csrfToken(key, session)))) {
				http.Error(w, "refused: the form is missing its anti-forgery token or is from another session; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		if session == "" {
			session = s.startSession(w, r)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, session)))
	})
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfTokenOf reads the token a request carries; a form field is read only
// from the body, never from the URL, where it would be logged.
func csrfTokenOf(r *http.Request) string {
	if h := r.Header.Get("X-Strata-CSRF"); h != "" {
		return h
	}
	return r.PostFormValue(csrfField)
}

// startSession gives the browser a new session, and with it a new token.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	session := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return session
}

func validSession(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// csrfKeyFor is the key a request's anti-forgery token is made with; nil
// when the request holds no credential a browser sends by itself, so there
// is nothing to forge. Under strata up the loopback listener is that
// credential and the key lives only in this process. In team mode the
// credential is the sign-in cookie and the key comes from it: every
// replica behind one Service agrees, and no other page knows it.
func (s *Server) csrfKeyFor(r *http.Request) []byte {
	if s.Local {
		return s.csrfKey
	}
	c, err := r.Cookie(tokenCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte("strata dashboard anti-forgery\x00" + c.Value))
	return key[:]
}

// csrfToken is the session's token: a MAC of the session under the key,
// so a page that plants a session cookie of its own still cannot make the
// token that goes with it.
func csrfToken(key []byte, session string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formToken is the token the page served to r puts in its forms.
func (s *Server) formToken(r *http.Request) string {
	session, _ := r.Context().Value(sessionKey{}).(string)
	key := s.csrfKeyFor(r)
	if session == "" || key == nil {
		return ""
	}
	return csrfToken(key, session)
}

// hostName is a name the dashboard answers to; an empty port matches any.
type hostName struct{ host, port string }

// splitHost reads host[:port], lower-cased, without the brackets of an
// IPv6 address or a trailing dot.
func splitHost(hostport string) hostName {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), ""
	}
	return hostName{strings.ToLower(strings.TrimSuffix(host, ".")), port}
}

// hostAllowed says whether a request's Host names this dashboard. In local
// mode those are the loopback names on the port it listens on; in team mode
// the names it was told it is served under (none told: any, as the
// sign-in cookie is sent only to the name it was set for).
func (s *Server) hostAllowed(hostport string) bool {
	got := splitHost(hostport)
	for _, name := range s.hosts {
		if name.host == got.host && (name.port == "" || name.port == got.port) {
			return true
		}
	}
	return !s.Local && len(s.hosts) == 0
}

// allowedHosts lists the names a dashboard answers to: those given, and in
// local mode the loopback names on the port of the address it listens on
// (any port when none is known, as with a test server).
func allowedHosts(local bool, listen string, names []string) []hostName {
	var hosts []hostName
	for _, n := range names {
		hosts = append(hosts, splitHost(n))
	}
	if !local {
		return hosts
	}
	own := splitHost(listen)
	for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
		hosts = append(hosts, hostName{h, own.port})
	}
	if ip := net.ParseIP(own.host); own.host != "" && (ip == nil || !ip.IsUnspecified()) {
		hosts = append(hosts, own)
	}
	return hosts
}
