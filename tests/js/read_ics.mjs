// Reads iCalendar files with Mozilla's ical.js (Thunderbird's parser) and prints, as JSON,
// what a client would show: for each file the calendar's properties and, for each VEVENT, its
// start and end as UTC instants and as wall-clock times in its own zone.
//
// Usage: node read_ics.mjs FILE...   (used by tests/test_calendars.py)
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function text(component, name) {
  const value = component.getFirstPropertyValue(name);
  return value === null ? null : String(value);
}

function instant(time) {
  return time.toJSDate().toISOString().replace(".000Z", "Z");
}

function read(path) {
  const calendar = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));
  // Time zones come only from the calendar's own VTIMEZONEs, never from a built-in database:
  // the point is to check what we emit.
  const timezones = calendar.getAllSubcomponents("vtimezone").map((vtimezone) => ({
    tzid: text(vtimezone, "tzid"),
    rdate: vtimezone.getAllSubcomponents().some((sub) => sub.hasProperty("rdate")),
  }));
  const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    const geo = vevent.getFirstPropertyValue("geo");
    const organizer = vevent.getFirstProperty("organizer");
    const attendee = vevent.getFirstProperty("attendee");
    return {
      uid: event.uid,
      summary: event.summary,
      description: event.description,
      location: event.location,
      status: text(vevent, "status"),
      sequence: event.sequence,
      url: text(vevent, "url"),
      geo: geo === null ? null : geo.map(Number),
      categories: vevent
        .getAllProperties("categories")
        .flatMap((property) => property.getValues().map(String)),
      organizer: organizer === null ? null : {
        value: String(organizer.getFirstValue()),
        cn: organizer.getParameter("cn") ?? null,
      },
      attendee: attendee === null ? null : {
        value: String(attendee.getFirstValue()),
        cn: attendee.getParameter("cn") ?? null,
        partstat: attendee.getParameter("partstat") ?? null,
        rsvp: attendee.getParameter("rsvp") ?? null,
      },
      tzid: event.startDate.zone ? event.startDate.zone.tzid : null,
      start_utc: instant(event.startDate),
      end_utc: instant(event.endDate),
      start_local: event.startDate.toString(),
      dtstamp_utc: instant(vevent.getFirstPropertyValue("dtstamp")),
    };
  });
  return {
    method: text(calendar, "method"),
    name: text(calendar, "name"),
    x_wr_calname: text(calendar, "x-wr-calname"),
    refresh_interval: text(calendar, "refresh-interval"),
    timezones,
    events,
  };
}

process.stdout.write(JSON.stringify(process.argv.slice(2).map(read)));
