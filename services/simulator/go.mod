module github.com/fieldstream/fieldstream/services/simulator

go 1.26.0

require (
	github.com/fieldstream/fieldstream/pkg v0.0.0
	github.com/oklog/run v1.2.0
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/fieldstream/fieldstream/pkg => ../../pkg
