package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/internal/testutil"
)

// TestKeysAPIRotatesTheClusterSecret rotates the secret of two agents
// through the HTTP API and shows the refusals: a non-JSON body, a bad key,
// removing the primary; afterwards an agent with the old secret is refused
// and counted as bad_secret.
func TestKeysAPIRotatesTheClusterSecret(t *testing.T) {
	oldKey, newKey := p2p.GenerateSecret(), p2p.GenerateSecret()
	cfgA, cfgB := testConfig(t, "a"), testConfig(t, "b")
	cfgA.Secret, cfgB.Secret = oldKey, oldKey
	a, b := joinedPair(t, cfgA, cfgB)
	ca := client(t, a, "")
	ctx := context.Background()
	testutil.Eventually(t, 20*time.Second, "both agents list two members", func() bool {
		ma, errA := ca.Members(ctx)
		mb, errB := client(t, b, "").Members(ctx)
		return errA == nil && errB == nil && len(ma) == 2 && len(mb) == 2
	})

	hc := httpClient(t)
	if status, eb := rawCall(t, hc, a, "POST", "/v1/keys/install", []byte(`{"key":"`+newKey+`"}`), http.Header{"Content-Type": {"text/plain"}}); status != http.StatusForbidden || eb.Error.Code != CodeUnsupportedMediaType {
		t.Fatalf("install as text/plain = %d %+v, want 403 %s", status, eb, CodeUnsupportedMediaType)
	}
	if _, err := ca.KeyOp(ctx, "install", "not a key"); !isAPIError(err, http.StatusBadRequest) {
		t.Fatalf("install of a bad key = %v, want 400", err)
	}

	for _, op := range []string{"install", "use"} {
		resp, err := ca.KeyOp(ctx, op, newKey)
		if err != nil || !resp.Complete() || len(resp.Applied) != 2 {
			t.Fatalf("%s = %+v, %v", op, resp, err)
		}
		if names := map[string]bool{resp.Applied[0].Name: true, resp.Applied[1].Name: true}; !names["a"] || !names["b"] {
			t.Fatalf("%s applied on %+v, want a and b by name", op, resp.Applied)
		}
	}
	resp, err := ca.KeyOp(ctx, "remove", newKey)
	if err != nil || len(resp.Failed) != 2 || resp.Complete() {
		t.Fatalf("remove of the primary = %+v, %v; want refused by both", resp, err)
	}
	if resp, err = ca.KeyOp(ctx, "remove", oldKey); err != nil || !resp.Complete() {
		t.Fatalf("remove of the old key = %+v, %v", resp, err)
	}
	list, err := client(t, b, "").Keys(ctx)
	if err != nil || list.Keys[newKey] != 2 || list.Primary[newKey] != 2 || len(list.Keys) != 1 {
		t.Fatalf("keys after the rotation = %+v, %v", list, err)
	}
	for _, ag := range []*Agent{a, b} {
		if info, err := os.Stat(filepath.Join(ag.cfg.DataDir, p2p.KeyringFile)); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("keyring file of %s: %v %v", ag.cfg.Name, info, err)
		}
	}

	// An agent that knows only the old secret is refused.
	cfgC := testConfig(t, "c")
	cfgC.Secret, cfgC.Join = oldKey, []string{a.Node().Addr()}
	startAgent(t, cfgC)
	testutil.Eventually(t, 20*time.Second, "a counts a bad_secret refusal", func() bool {
		return a.tr.Stats().RefusedBadSecret > 0
	})
	if members, err := ca.Members(ctx); err != nil || len(members) != 2 {
		t.Fatalf("members after the outsider tried = %d, %v; want 2", len(members), err)
	}
}

func isAPIError(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
