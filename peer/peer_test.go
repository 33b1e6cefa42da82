package peer

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIDPrintableFormRoundTrips(t *testing.T) {
	key, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := key.ID()
	parsed, err := ParseID(id.String())
	if err != nil || parsed != id {
		t.Fatalf("ParseID(%s) = %v, %v", id, parsed, err)
	}
	if len(id.String()) != 52 || len(id.Short()) != 10 {
		t.Fatalf("printable forms: %q %q", id, id.Short())
	}
	for _, bad := range []string{"", "xyz", id.String()[:40], id.String() + "aa", "0" + id.String()[1:]} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestLoadOrCreateKeyKeepsTheKeyWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", info.Mode().Perm())
	}
	second, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID() != second.ID() {
		t.Fatal("restart produced a different identity")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	key, _ := GenerateKey(nil)
	sig := key.Sign([]byte("msg"))
	if !Verify(key.Public(), []byte("msg"), sig) {
		t.Fatal("valid signature refused")
	}
	if Verify(key.Public(), []byte("other"), sig) || Verify(key.Public()[:5], []byte("msg"), sig) || Verify(key.Public(), []byte("msg"), sig[:10]) {
		t.Fatal("invalid signature accepted")
	}
}
