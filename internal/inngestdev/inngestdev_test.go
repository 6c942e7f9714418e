package inngestdev

import "testing"

func TestExecutions(t *testing.T) {
	run := "RUN"
	two := 2
	zero := 0
	tests := []struct {
		name string
		span Span
		want int
	}{
		{"first attempt, no attempt spans", Span{StepOp: &run, Attempts: &zero}, 1},
		{"no attempt number", Span{StepOp: &run}, 1},
		{"third attempt, no attempt spans", Span{StepOp: &run, Attempts: &two}, 3},
		{"attempt spans listed", Span{StepOp: &run, Attempts: &two, ChildrenSpans: []Span{{StepOp: &run}, {StepOp: &run}, {Name: "not a step"}}}, 2},
	}
	for _, tt := range tests {
		if got := tt.span.Executions(); got != tt.want {
			t.Errorf("%s: Executions() = %d; want %d", tt.name, got, tt.want)
		}
	}
}
