package auth_test

import (
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
)

// Example shows the wiring crossbar and cmd/vw need: the secret from the
// environment, the two auth routes, Authorize before every upgrade, and
// OnDeny to close a revoked token's live connections.
func Example() {
	log := logrus.NewEntry(logrus.New())
	secret, err := auth.Secret(os.Getenv("VW_RELAY_SECRET"), os.Getenv("VW_RELAY_SECRET_FILE"))
	if err != nil {
		log.WithError(err).Fatal("relay secret")
	}
	a, err := auth.New(auth.Config{Secret: secret, Public: []string{"demo/"}}, log)
	if err != nil {
		log.WithError(err).Fatal("relay auth")
	}
	if a.Open() {
		log.Warn("no VW_RELAY_SECRET: the relay is open, anyone may publish and watch")
	}

	// `vw token --path lab1/ --scope read,write --ttl 24h`:
	if tok, err := a.Mint("lab1/", []string{auth.ScopeRead, auth.ScopeWrite}, 24*time.Hour); err == nil {
		_ = tok // print it
	}

	upgrader := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.Handle(auth.AccessPrefix+"/", a.AccessHandler())
	mux.Handle(auth.DenyPath, a.DenyHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g, err := a.Authorize(r)
		if err != nil {
			auth.WriteError(w, err) // 401/403/400 with {"error":"…"}, before any upgrade
			return
		}
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		// Register c under g.ID in topic g.Topic as a g.Role (the path is
		// read once, by Authorize); then close the gap with a deny that
		// landed between Authorize and the registration:
		if g.ID != "" && a.Denied(g.ID, g.Path) {
			c.Close()
		}
	})
	remove := a.OnDeny(func(d auth.Denial) {
		// close every live connection whose grant g has d.Refuses(g.ID, g.Path)
	})
	defer remove()
	_ = mux
}
