// Package dcb holds the three examples of dynamic consistency boundaries
// from the DCB literature (dcb.events), on any annals store: course
// subscriptions (a course's capacity and a student's limit of courses,
// checked in one decision with no aggregate owning both), a username
// claimed once across the whole store, and invoice numbers without gaps.
// Each decision reads the events its query selects and appends under the
// condition that none matching it came since (command.HandleQuery).
package dcb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/annals/annals/command"
)

// Errors of the decisions.
var (
	ErrNoCourse      = errors.New("dcb: no such course")
	ErrCourseFull    = errors.New("dcb: the course is full")
	ErrTooManyCourse = errors.New("dcb: the student has reached the limit of courses")
	ErrSubscribed    = errors.New("dcb: the student is already subscribed to the course")
	ErrUsernameTaken = errors.New("dcb: the username is taken")
)

// StudentCourseLimit is how many courses one student may take.
const StudentCourseLimit = 3

func courseTag(course string) string   { return "course:" + course }
func studentTag(student string) string { return "student:" + student }

func record(stream, typ string, v any, tags ...string) annals.Record {
	data, _ := json.Marshal(v)
	return annals.Record{Stream: stream, Event: annals.EventData{Type: typ, Data: data, Tags: tags}}
}

type courseDefined struct {
	Course   string `json:"course"`
	Capacity int    `json:"capacity"`
}

type subscribed struct {
	Course  string `json:"course"`
	Student string `json:"student"`
}

// DefineCourse records a course and its capacity.
func DefineCourse(ctx context.Context, s annals.Store, course string, capacity int) error {
	_, err := s.Append(ctx, "course-"+course, annals.NoStream,
		record("", "CourseDefined", courseDefined{course, capacity}, courseTag(course)).Event)
	return err
}

// Subscribe subscribes student to course if the course has room and the
// student is under StudentCourseLimit: one decision over the course's
// events and the student's, which no single stream holds.
func Subscribe(ctx context.Context, s annals.Store, course, student string) (command.QueryResult, error) {
	q := annals.Query{Items: []annals.QueryItem{
		{Types: []string{"CourseDefined", "StudentSubscribed"}, Tags: []string{courseTag(course)}},
		{Types: []string{"StudentSubscribed"}, Tags: []string{studentTag(student)}},
	}}
	return command.HandleQuery(ctx, s, q, func(events []annals.Event) ([]annals.Record, error) {
		capacity, inCourse, ofStudent := -1, 0, 0
		for _, e := range events {
			switch e.Type {
			case "CourseDefined":
				var c courseDefined
				if err := json.Unmarshal(e.Data, &c); err != nil {
					return nil, err
				}
				capacity = c.Capacity
			case "StudentSubscribed":
				var sub subscribed
				if err := json.Unmarshal(e.Data, &sub); err != nil {
					return nil, err
				}
				if sub.Course == course && sub.Student == student {
					return nil, ErrSubscribed
				}
				if sub.Course == course {
					inCourse++
				}
				if sub.Student == student {
					ofStudent++
				}
			}
		}
		switch {
		case capacity < 0:
			return nil, ErrNoCourse
		case inCourse >= capacity:
			return nil, ErrCourseFull
		case ofStudent >= StudentCourseLimit:
			return nil, ErrTooManyCourse
		}
		return []annals.Record{record("student-"+student, "StudentSubscribed", subscribed{course, student},
			courseTag(course), studentTag(student))}, nil
	}, command.QueryOptions{Retry: command.Retry{MaxAttempts: command.MaxAttemptsLimit}})
}

func usernameTag(name string) string { return "username:" + name }

// ClaimUsername records that user took name, unless anyone has: the
// uniqueness spans every user's stream.
func ClaimUsername(ctx context.Context, s annals.Store, user, name string) (command.QueryResult, error) {
	q := annals.Query{Items: []annals.QueryItem{{Tags: []string{usernameTag(name)}}}}
	return command.HandleQuery(ctx, s, q, func(events []annals.Event) ([]annals.Record, error) {
		if len(events) > 0 {
			return nil, ErrUsernameTaken
		}
		return []annals.Record{record("user-"+user, "UsernameClaimed", map[string]string{"user": user, "name": name}, usernameTag(name))}, nil
	}, command.QueryOptions{})
}

// invoiceTag marks every invoice: the next number is the last one's plus
// one, decided on the last invoice alone.
const invoiceTag = "invoice"

type invoiceCreated struct {
	Number   int    `json:"number"`
	Customer string `json:"customer"`
}

// CreateInvoice records an invoice for customer with the next number:
// numbers start at 1 and have no gaps, whoever creates them concurrently.
func CreateInvoice(ctx context.Context, s annals.Store, customer string) (int, error) {
	q := annals.Query{Items: []annals.QueryItem{{Types: []string{"InvoiceCreated"}, Tags: []string{invoiceTag}}}}
	var number int
	_, err := command.HandleQuery(ctx, s, q, func(events []annals.Event) ([]annals.Record, error) {
		number = 1
		if len(events) > 0 {
			var last invoiceCreated
			if err := json.Unmarshal(events[len(events)-1].Data, &last); err != nil {
				return nil, err
			}
			number = last.Number + 1
		}
		return []annals.Record{record(fmt.Sprintf("invoice-%d", number), "InvoiceCreated", invoiceCreated{number, customer}, invoiceTag)}, nil
	}, command.QueryOptions{Last: 1, Retry: command.Retry{MaxAttempts: command.MaxAttemptsLimit}})
	return number, err
}
