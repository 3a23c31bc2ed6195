#!/usr/bin/env python3
"""The few HTTP calls the local scripts make, with Python's standard library
only: a fresh machine has python3 but not necessarily curl.

  http_request.py probe URL                  exit 0 once anything answers HTTP
  http_request.py call METHOD URL OUT [-H 'N: v']... [--data-binary @FILE|TEXT]
                                             prints the status, body to OUT
"""
import sys
import urllib.error
import urllib.request


def probe(url):
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        pass  # any status means the server is up
    except OSError:
        return 1
    return 0


def call(method, url, out, args):
    headers, data = {}, None
    while args:
        flag, value, args = args[0], args[1], args[2:]
        if flag == "-H":
            name, _, text = value.partition(":")
            headers[name.strip()] = text.strip()
        elif flag == "--data-binary":
            if value.startswith("@"):
                with open(value[1:], "rb") as source:
                    data = source.read()
            else:
                data = value.encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=30)
        status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    with open(out, "wb") as sink:
        sink.write(body)
    print(status)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        sys.exit(probe(sys.argv[2]))
    if sys.argv[1:2] == ["call"]:
        sys.exit(call(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
    sys.exit(__doc__)
