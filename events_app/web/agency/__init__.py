"""The agency back office under /organisme: staff sign-in and password, the agency's events
(create, edit, duplicate, cancel, close or reopen registrations), registrants and attendance,
CSV export, feeds and their import runs, and the API token.

Staff sessions use their own keys (staff_id and the stamp of the password they were opened
with), in the same signed cookie as seekers' sessions; every sign-in, staff or seeker, starts
from an empty session, so one browser is never both at once. Every page needs a signed-in staff
member, and every query is scoped to that person's agency: another agency's event is a 404
page, never a 403 that would confirm it exists.

Forms are turned into the agency API's field dict (parse_event_form) and validated by the same
domain functions as the API; their InvalidInput errors are shown beside the field, with status
400, in French words rather than API field names.

One module per concern: session (the staff session, the staff-only guard, rendering), auth
(sign-in, sign-out, password reset), event_form (form fields to API fields), events (the
dashboard and one event's pages), registrants (attendance, CSV), feeds (feeds and the API
token), routes (the route table).
"""

from events_app.web.agency.routes import routes

__all__ = ["routes"]
