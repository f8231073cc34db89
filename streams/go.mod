module github.com/fieldstream/fieldstream/streams

go 1.26.0
