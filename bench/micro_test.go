package main

import "testing"

// go test -run '^$' -bench . -benchmem ./bench
func BenchmarkHandlerService(b *testing.B)  { microBenchmarks()[0].service(b) }
func BenchmarkHandlerBaseline(b *testing.B) { microBenchmarks()[0].baseline(b) }
func BenchmarkMappingService(b *testing.B)  { microBenchmarks()[1].service(b) }
func BenchmarkMappingBaseline(b *testing.B) { microBenchmarks()[1].baseline(b) }
