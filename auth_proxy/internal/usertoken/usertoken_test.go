package usertoken

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
)

type files map[string]string

func (f files) Get(p string) (string, error) {
	if v, ok := f[p]; ok {
		return v, nil
	}
	return "", fmt.Errorf("missing %s", p)
}

func TestFetchCacheAndRefetchNearExpiry(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer ptok" || r.Header.Get("X-Berth-Thread-Id") != "t1" || r.URL.Query().Get("provider") != "cal" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"detail":"wrong proxy token for this thread"}`))
			return
		}
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":10}`, n)
	}))
	defer srv.Close()
	fs := files{"/tid": "t1", "/ptok": "ptok"}
	s := New(config.AgentAuth{TokenURL: srv.URL, ThreadIDFile: "/tid", ProxyTokenFile: "/ptok"}, fs, srv.Client(), 2*time.Second)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if got, err := s.Get(inject.OAuthKey("cal")); err != nil || got != "tok-1" {
			t.Fatalf("Get = %q, %v", got, err)
		}
	}
	now = now.Add(9 * time.Second) // within the margin: fetched again
	if got, _ := s.Get(inject.OAuthKey("cal")); got != "tok-2" {
		t.Fatalf("after expiry Get = %q", got)
	}
	if got, _ := s.Get("/ptok"); got != "ptok" {
		t.Fatalf("file keys pass through, got %q", got)
	}
	fs["/ptok"] = "wrong"
	now = now.Add(time.Hour)
	_, err := s.Get(inject.OAuthKey("cal"))
	if err == nil || !strings.Contains(err.Error(), "401: wrong proxy token") || strings.Contains(err.Error(), "tok-") {
		t.Fatalf("err = %v", err)
	}
	fs["/tid"] = ""
	if _, err := s.Get(inject.OAuthKey("cal")); err == nil || !strings.Contains(err.Error(), "not claimed") {
		t.Fatalf("unbound sandbox err = %v", err)
	}
}

// The operator's form: the runtime URL comes from a file the claim provides, next to the
// thread id and the proxy token; before the claim binds, the sandbox gets a clear error.
func TestTokenURLFromFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/auth/sandbox/token" || r.Header.Get("Authorization") != "Bearer ptok" || r.Header.Get("X-Berth-Thread-Id") != "t1" {
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"from-file","expires_in":60}`))
	}))
	defer srv.Close()
	fs := files{"/tid": "t1", "/ptok": "ptok"}
	s := New(config.AgentAuth{TokenURLFile: "/url", ThreadIDFile: "/tid", ProxyTokenFile: "/ptok"}, fs, srv.Client(), time.Second)
	if _, err := s.Get(inject.OAuthKey("cal")); err == nil || !strings.Contains(err.Error(), "token URL file /url is empty or missing") {
		t.Fatalf("missing URL file err = %v", err)
	}
	fs["/url"] = "file:///etc/passwd"
	if _, err := s.Get(inject.OAuthKey("cal")); err == nil || !strings.Contains(err.Error(), "must be an http(s) URL") {
		t.Fatalf("bad URL err = %v", err)
	}
	fs["/url"] = srv.URL + "/v2/auth/sandbox/token"
	if got, err := s.Get(inject.OAuthKey("cal")); err != nil || got != "from-file" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}
