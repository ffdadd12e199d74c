package inject

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
)

type mapSecrets map[string]string

func (m mapSecrets) Get(p string) (string, error) {
	if v, ok := m[p]; ok {
		return v, nil
	}
	return "", errors.New("secret file " + p + " unavailable")
}

var rule = config.Rule{
	Name: "openai", Hosts: []string{"api.openai.com"},
	Headers: []config.Header{
		{Name: "Authorization", Value: "Bearer {secret}", SecretFile: "/s/key"},
		{Name: "OpenAI-Organization", Value: "org-1"},
	},
}

func TestApplyReplacesClientValue(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer stolen-or-fake"}}
	if err := Apply(h, &rule, mapSecrets{"/s/key": "sk-real"}); err != nil {
		t.Fatal(err)
	}
	if got := h.Values("Authorization"); len(got) != 1 || got[0] != "Bearer sk-real" {
		t.Errorf("Authorization = %v", got)
	}
	if h.Get("OpenAI-Organization") != "org-1" {
		t.Errorf("static header missing: %v", h)
	}
}

func TestPlaceholderRequired(t *testing.T) {
	r := rule
	r.Placeholder = "berth-placeholder-openai"
	store := mapSecrets{"/s/key": "sk-real"}
	for _, ok := range []string{"Bearer berth-placeholder-openai", "berth-placeholder-openai"} {
		h := http.Header{"Authorization": {ok}}
		if err := Apply(h, &r, store); err != nil || h.Get("Authorization") != "Bearer sk-real" {
			t.Errorf("%q: err=%v header=%q", ok, err, h.Get("Authorization"))
		}
	}
	for _, bad := range []string{"", "Bearer sk-real", "Bearer berth-placeholder-openaiX"} {
		h := http.Header{}
		if bad != "" {
			h.Set("Authorization", bad)
		}
		err := Apply(h, &r, store)
		var ie *Error
		if !errors.As(err, &ie) || ie.Status != http.StatusForbidden || strings.Contains(err.Error(), "sk-real") {
			t.Errorf("%q: want 403 without the secret, got %v", bad, err)
		}
		if h.Get("Authorization") != bad {
			t.Errorf("%q: header changed despite missing placeholder", bad)
		}
	}
}

func TestMissingSecretIs502WithoutValue(t *testing.T) {
	err := Apply(http.Header{}, &rule, mapSecrets{})
	var ie *Error
	if !errors.As(err, &ie) || ie.Status != http.StatusBadGateway || !strings.Contains(err.Error(), "/s/key") {
		t.Fatalf("got %v", err)
	}
}
