module github.com/berth-dev/berth/auth_proxy

go 1.26
