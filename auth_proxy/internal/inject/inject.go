// Package inject applies a rule's headers to an outgoing request, filling
// {secret} from the secret store, and enforces the rule's placeholder token.
package inject

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
)

// Secrets is what the injector needs from the store.
type Secrets interface {
	Get(path string) (string, error)
}

// OAuthKey is the store key of a provider's user token: a Secrets implementation
// answers it from the runtime instead of a file (see package usertoken).
func OAuthKey(provider string) string { return "oauth:" + provider }

// Error is a refusal with a status; its message never contains a secret.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Apply sets every header of rule on h. When the rule has a placeholder, the
// request must carry it in the rule's first header, either alone or in the
// header's template (e.g. "Bearer berth-placeholder-openai"); otherwise 403.
func Apply(h http.Header, rule *config.Rule, store Secrets) error {
	if rule.Placeholder != "" {
		first := rule.Headers[0]
		got := h.Get(first.Name)
		want := strings.ReplaceAll(first.Value, "{secret}", rule.Placeholder)
		if got != rule.Placeholder && got != want {
			return &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf(
				"rule %s requires the placeholder token in header %s (send %q)", rule.Name, first.Name, want)}
		}
	}
	for _, hd := range rule.Headers {
		value := hd.Value
		if strings.Contains(value, "{secret}") {
			key := hd.SecretFile
			if hd.OAuthProvider != "" {
				key = OAuthKey(hd.OAuthProvider)
			}
			secret, err := store.Get(key)
			if err != nil {
				return &Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("rule %s: %v", rule.Name, err)}
			}
			value = strings.ReplaceAll(value, "{secret}", secret)
		}
		h.Set(hd.Name, value)
	}
	return nil
}
