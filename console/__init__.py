"""The staff console: the admin site with the day's work on its home page and a refunds
report. It sits above every app (it reads their queues) and no app imports it."""
