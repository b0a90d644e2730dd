package codec_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/omniqhq/omniq/codec"
)

func Example() {
	type SendEmail struct {
		To      string    `json:"to"`
		Subject string    `json:"subject"`
		SendAt  time.Time `json:"send_at"`
	}
	// Complex numbers have no JSON form: this type needs the gob fallback,
	// which only handles registered types.
	type Measurement struct {
		Sensor    string
		Impedance complex128
	}

	m := codec.NewManager()
	if err := m.Gob().Register(Measurement{}); err != nil {
		panic(err)
	}

	// Ordinary args go to JSON, stored as is in the jsonb column.
	name, data, err := m.Encode(SendEmail{To: "ada@example.com", Subject: "Hi",
		SendAt: time.Date(2025, 6, 1, 9, 0, 0, 0, time.FixedZone("CEST", 2*3600))})
	if err != nil {
		panic(err)
	}
	fmt.Println(name, string(m.ToJSONB(name, data)))

	var email SendEmail
	if err := m.Decode(name, data, &email); err != nil {
		panic(err)
	}
	fmt.Println(email.To, email.SendAt.Format(time.RFC3339))

	// What JSON cannot carry goes to gob, stored as a base64 jsonb string.
	name, data, err = m.Encode(Measurement{Sensor: "z1", Impedance: complex(50, -3)})
	if err != nil {
		panic(err)
	}
	stored := m.ToJSONB(name, data)
	fmt.Println(name, stored[0] == '"')

	raw, err := m.FromJSONB(name, stored)
	if err != nil {
		panic(err)
	}
	var meas Measurement
	if err := m.Decode(name, raw, &meas); err != nil {
		panic(err)
	}
	fmt.Println(meas.Sensor, meas.Impedance)

	// A func is carried by neither codec.
	_, _, err = m.Encode(struct{ Callback func() }{})
	fmt.Println(errors.Is(err, codec.ErrUnsupported))
	fmt.Println(err)

	// Output:
	// json {"to":"ada@example.com","subject":"Hi","send_at":"2025-06-01T09:00:00+02:00"}
	// ada@example.com 2025-06-01T09:00:00+02:00
	// gob true
	// z1 (50-3i)
	// true
	// codec: unsupported value: func() at struct { Callback func() }.Callback: no codec can carry a func
}

func ExampleManager_MarshalFrame() {
	m := codec.NewManager()
	frame, err := m.MarshalFrame(map[string]int{"retries": 3})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", frame)

	var got map[string]int
	if err := m.UnmarshalFrame(frame, &got); err != nil {
		panic(err)
	}
	fmt.Println(got["retries"])

	err = m.UnmarshalFrame(frame[:len(frame)-1], &got)
	fmt.Println(errors.Is(err, codec.ErrCorrupt))

	// Output:
	// "OQCF\x01\x04json\x00\x00\x00\r{\"retries\":3}"
	// 3
	// true
}
