package server

import (
	"encoding/json"
	"net/http"

	"github.com/annals/annals/projection"
)

// mountProjections serves reg's status and control endpoints on mux under
// projection.APIPrefix. With credentials, every request needs them, GETs
// included, as every gRPC call does but the connection handshake: a
// status names the projections and shows their errors, which is as much
// the admin's business as the streams are.
func mountProjections(mux *http.ServeMux, reg *projection.Registry, creds Credentials) {
	h := creds.http(reg.Handler())
	mux.Handle(projection.APIPrefix, h)
	mux.Handle(projection.APIPrefix+"/", h)
}

// http checks a request's Basic credentials before next serves it. Missing
// and bad credentials both answer 401 with a Basic challenge, so that curl
// and browsers know to send them (gRPC tells the two apart, as KurrentDB
// does; HTTP clients only act on the challenge).
func (c Credentials) http(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || !c(user, pass) {
			msg := "this server requires credentials (HTTP Basic)"
			if ok {
				msg = "bad credentials"
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="annals", charset="UTF-8"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(projection.ErrorBody{Error: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}
