"""The fetcher: a Celery beat that ticks and a worker that stores 1-minute bars."""
