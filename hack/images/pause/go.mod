module github.com/berth-dev/berth/hack/images/pause

go 1.26
