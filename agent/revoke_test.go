package agent

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/p2p-go/p2p/internal/testutil"
	"github.com/p2p-go/p2p/peer"
)

// apiCode returns the API error code of err ("" when it is not one).
func apiCode(err error) (int, string) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status, apiErr.Code
	}
	return 0, ""
}

// POST /v1/revocations revokes, GET lists; with --admin set, a member that
// is not an admin gets 403 not_admin; bad IDs, the agent's own ID and
// reserved keys get 400.
func TestRevocationsAPI(t *testing.T) {
	cfgA, cfgB := testConfig(t, "a"), testConfig(t, "b")
	keyA, err := peer.LoadOrCreateKey(cfgA.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	cfgA.Admins = []string{keyA.ID().String()}
	cfgB.Admins = cfgA.Admins
	a, b := joinedPair(t, cfgA, cfgB)
	ca, cb := client(t, a, ""), client(t, b, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := cb.Revoke(ctx, a.Node().ID().String()); !codeIs(err, http.StatusForbidden, CodeNotAdmin) {
		t.Fatalf("member's revocation: %v", err)
	}
	for _, id := range []string{a.Node().ID().String(), "not-an-id"} {
		if _, err := ca.Revoke(ctx, id); !codeIs(err, http.StatusBadRequest, CodeBadRequest) {
			t.Fatalf("revoke %q: %v", id, err)
		}
	}
	rev, err := ca.Revoke(ctx, b.Node().ID().String())
	if err != nil || rev.ID != b.Node().ID().String() || rev.By != a.Node().ID().String() || rev.At == "" {
		t.Fatalf("revocation %+v, %v", rev, err)
	}
	list, err := ca.Revocations(ctx)
	if err != nil || len(list) != 1 || list[0] != rev {
		t.Fatalf("revocations %+v, %v", list, err)
	}
	if _, err := ca.Put(ctx, "_p2p/revoked/x", []byte("v")); !codeIs(err, http.StatusBadRequest, CodeBadRequest) {
		t.Fatalf("PUT under _p2p/: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "b cut off from a", func() bool {
		neighbors, err := a.Node().Neighbors(ctx)
		return err == nil && len(neighbors) == 0
	})
}

func codeIs(err error, status int, code string) bool {
	s, c := apiCode(err)
	return s == status && c == code
}
