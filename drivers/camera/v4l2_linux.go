//go:build linux

package camera

import (
	"errors"
	"fmt"

	"github.com/blackjack/webcam"
)

// mjpeg is the V4L2 fourcc 'MJPG'.
const mjpeg = webcam.PixelFormat(0x47504A4D)

func openV4L2(device string) (Frames, error) {
	cam, err := webcam.Open(device)
	if err != nil {
		return nil, err
	}
	if _, ok := cam.GetSupportedFormats()[mjpeg]; !ok {
		cam.Close()
		return nil, fmt.Errorf("%s does not offer MJPEG", device)
	}
	w, h := uint32(640), uint32(480)
	if sizes := cam.GetSupportedFrameSizes(mjpeg); len(sizes) > 0 && sizes[0].MaxWidth > 0 && sizes[0].MaxWidth < w {
		w, h = sizes[0].MaxWidth, sizes[0].MaxHeight
	}
	if _, _, _, err := cam.SetImageFormat(mjpeg, w, h); err != nil {
		cam.Close()
		return nil, fmt.Errorf("set MJPEG %dx%d: %w", w, h, err)
	}
	return cam, nil
}

func isWaitTimeout(err error) bool {
	var t *webcam.Timeout
	return errors.As(err, &t)
}
