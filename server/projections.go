package server

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/annals/annals/projection"
)

// mountProjections serves reg's status and control endpoints on mux under
// projection.APIPrefix. With credentials, every request needs them, GETs
// included, as every gRPC call does but the connection handshake: a
// status names the projections and shows their errors, which is as much
// the admin's business as the streams are.
func mountProjections(mux *http.ServeMux, reg *projection.Registry, g *gate) {
	h := g.http(reg.Handler())
	mux.Handle(projection.APIPrefix, h)
	mux.Handle(projection.APIPrefix+"/", h)
}

// http checks a request's Basic credentials before next serves it. Missing
// and bad credentials both answer 401 with a Basic challenge, so that curl
// and browsers know to send them (gRPC tells the two apart, as KurrentDB
// does; HTTP clients only act on the challenge).
func (g *gate) http(next http.Handler) http.Handler {
	if g.creds == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := "this server requires credentials (HTTP Basic)"
		code := http.StatusUnauthorized
		if header := r.Header.Get("Authorization"); header != "" {
			addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
			err := g.check(addr, header, func(string) (string, string, bool) { return r.BasicAuth() })
			var throttled *throttledError
			if errors.As(err, &throttled) {
				code = http.StatusTooManyRequests
				w.Header().Set("Retry-After", strconv.Itoa(int(throttled.wait.Seconds())+1))
			}
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			msg = err.Error()
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="annals", charset="UTF-8"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(projection.ErrorBody{Error: msg})
	})
}
