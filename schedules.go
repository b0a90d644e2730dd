package omniq

import "context"

// scheduleService fires due schedules while the client runs. (Placeholder:
// the periodic package's scheduler is wired here.)
type scheduleService struct{ c *Client }

func newScheduleService(c *Client) *scheduleService { return &scheduleService{c: c} }

func (s *scheduleService) start(ctx context.Context) error { return nil }

func (s *scheduleService) stop(ctx context.Context) error { return nil }
