// Package usertoken fetches the OAuth access token of a sandbox's thread user from the
// Berth runtime (GET tokenURL?provider=P with the per-thread proxy token), caches it
// until shortly before it expires, and fetches again: refreshed tokens apply without a
// restart. Errors never contain a token.
package usertoken

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/auth_proxy/internal/config"
	"github.com/berth-dev/berth/auth_proxy/internal/inject"
)

// Files reads the thread id and proxy token files (the secret store, which re-reads
// them when they change).
type Files interface {
	Get(path string) (string, error)
}

type entry struct {
	token   string
	expires time.Time
}

// Source answers inject.OAuthKey(provider) keys; every other key goes to Files.
type Source struct {
	cfg    config.AgentAuth
	files  Files
	client *http.Client
	now    func() time.Time
	margin time.Duration

	mu    sync.Mutex
	cache map[string]entry // thread id + "\x00" + provider
}

// New returns a Source; margin is how long before expiry a token is fetched again.
func New(cfg config.AgentAuth, files Files, client *http.Client, margin time.Duration) *Source {
	return &Source{cfg: cfg, files: files, client: client, now: time.Now, margin: margin, cache: map[string]entry{}}
}

// Get implements inject.Secrets.
func (s *Source) Get(key string) (string, error) {
	provider, ok := strings.CutPrefix(key, inject.OAuthKey(""))
	if !ok {
		return s.files.Get(key)
	}
	thread, err := s.files.Get(s.cfg.ThreadIDFile)
	if err != nil || thread == "" {
		return "", fmt.Errorf("oauth provider %s: the sandbox is not claimed for a thread (%s is empty or missing)", provider, s.cfg.ThreadIDFile)
	}
	ck := thread + "\x00" + provider
	s.mu.Lock()
	e, hit := s.cache[ck]
	s.mu.Unlock()
	if hit && s.now().Before(e.expires) {
		return e.token, nil
	}
	proxyToken, err := s.files.Get(s.cfg.ProxyTokenFile)
	if err != nil || proxyToken == "" {
		return "", fmt.Errorf("oauth provider %s: proxy token file %s is empty or missing", provider, s.cfg.ProxyTokenFile)
	}
	tokenURL := s.cfg.TokenURL
	if s.cfg.TokenURLFile != "" {
		tokenURL, err = s.files.Get(s.cfg.TokenURLFile)
		if err != nil || tokenURL == "" {
			return "", fmt.Errorf("oauth provider %s: token URL file %s is empty or missing", provider, s.cfg.TokenURLFile)
		}
		if err := config.ValidTokenURL(tokenURL); err != nil {
			return "", fmt.Errorf("oauth provider %s: token URL file %s: %v", provider, s.cfg.TokenURLFile, err)
		}
	}
	e, err = s.fetch(tokenURL, provider, thread, proxyToken)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.cache[ck] = e
	s.mu.Unlock()
	return e.token, nil
}

func (s *Source) fetch(tokenURL, provider, thread, proxyToken string) (entry, error) {
	u := tokenURL + "?" + url.Values{"provider": {provider}}.Encode()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return entry{}, fmt.Errorf("oauth provider %s: %v", provider, err)
	}
	req.Header.Set("Authorization", "Bearer "+proxyToken)
	req.Header.Set("X-Berth-Thread-Id", thread)
	resp, err := s.client.Do(req)
	if err != nil {
		return entry{}, fmt.Errorf("oauth provider %s: runtime unreachable: %v", provider, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var detail struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(raw, &detail)
		return entry{}, fmt.Errorf("oauth provider %s: runtime answered %d: %s", provider, resp.StatusCode, detail.Detail)
	}
	var body struct {
		AccessToken string   `json:"access_token"`
		ExpiresIn   *float64 `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.AccessToken == "" {
		return entry{}, fmt.Errorf("oauth provider %s: runtime answered no access_token", provider)
	}
	ttl := 5 * time.Minute // no expiry given: ask again now and then (revocation)
	if body.ExpiresIn != nil {
		ttl = time.Duration(*body.ExpiresIn*float64(time.Second)) - s.margin
	}
	return entry{token: body.AccessToken, expires: s.now().Add(ttl)}, nil
}
