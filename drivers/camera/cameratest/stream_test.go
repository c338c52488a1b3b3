package cameratest_test

import (
	"context"
	"testing"
	"time"

	"github.com/sentinel-edge/sentinel/drivers/camera"
	"github.com/sentinel-edge/sentinel/drivers/camera/cameratest"
)

func TestStream(t *testing.T) {
	s := cameratest.NewStream()
	var online []bool
	s.OnState(func(on bool, _ error) { online = append(online, on) })
	t0 := time.Unix(1700000000, 0)
	s.Send(cameratest.JPEG, t0)
	s.Send(cameratest.JPEG, t0.Add(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	var got []camera.Frame
	done := make(chan error)
	go func() {
		done <- s.Run(ctx, func(f camera.Frame) {
			got = append(got, f)
			if len(got) == 2 {
				cancel()
			}
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 || !got[1].Time.Equal(t0.Add(time.Second)) {
		t.Errorf("frames %+v", got)
	}
	s.SetState(false, nil)
	if len(online) != 1 || online[0] {
		t.Errorf("states %v", online)
	}
}
