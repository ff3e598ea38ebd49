"""gunicorn settings (`gunicorn -c shopseg/gunicorn_conf.py shopseg.wsgi`).

The access log leaves out query strings: OAuth callbacks and embedded loads carry `code`, `hmac`
and `id_token` there, and none of them belong in a log.
"""
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
timeout = 30
graceful_timeout = 20
