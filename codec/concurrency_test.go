package codec_test

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse runs encoders, decoders and registrations at once; run
// it with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	args := TaskArgs{Name: "c", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}}
	reading := Reading{Sensor: "c", Impedance: 3i}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				for _, in := range []any{args, reading} {
					frame, err := m.MarshalFrame(in)
					if err != nil {
						t.Error(err)
						return
					}
					var err2 error
					switch in.(type) {
					case TaskArgs:
						var out TaskArgs
						err2 = m.UnmarshalFrame(frame, &out)
					case Reading:
						var out Reading
						err2 = m.UnmarshalFrame(frame, &out)
					}
					if err2 != nil {
						t.Error(err2)
						return
					}
				}
				if i%50 == 0 {
					if err := m.Register(brokenCodec{name: fmt.Sprintf("c-%d-%d", g, i)}); err != nil {
						t.Error(err)
					}
					if err := m.Gob().Register(map[int][]string{}); err != nil {
						t.Error(err)
					}
					_, _ = m.Codec("json")
					_ = m.Default()
				}
			}
		})
	}
	wg.Wait()
}
