package dashboard

import "testing"

// What one user may see is never served to another, and is kept only a
// while.
func TestDigestsSeenArePerUser(t *testing.T) {
	var d digestsSeen
	d.put("alice-token", map[string]string{"web@1.0.0": "sha256:a"})
	if got, ok := d.get("alice-token"); !ok || got["web@1.0.0"] != "sha256:a" {
		t.Errorf("alice's digests: %v %v", got, ok)
	}
	if _, ok := d.get("bob-token"); ok {
		t.Error("bob was served what alice may see")
	}
	for i := range digestsUsers + 1 {
		d.put(string(rune('a'+i%26))+string(rune(i)), map[string]string{})
	}
	if n := len(d.users); n > digestsUsers {
		t.Errorf("%d users kept, want at most %d", n, digestsUsers)
	}
}
