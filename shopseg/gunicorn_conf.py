"""gunicorn settings (`gunicorn -c shopseg/gunicorn_conf.py shopseg.wsgi`).

The access log leaves out query strings: OAuth callbacks and embedded loads carry `code`, `hmac`
and `id_token` there, and none of them belong in a log.

Four processes of four threads ("Running in production" in the README; flags on the command line
override these). Threads matter for the webhook endpoint: each delivery waits for its commit to
reach disk before the 200, and while one thread waits another can run, so PostgreSQL flushes the
WAL once for several commits (BENCHMARKS.md, "Webhook endpoint under gunicorn").
"""
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
timeout = 30
graceful_timeout = 20
workers = 4
threads = 4
