"""Jiesu's Open311 endpoint through an existing client library, `georeport` (PyPI), in both of
its formats: the services, a service's definition, the requests and one request.

usage: client.py ROOT_URL CASE_NO SERVICE_CODE   (prints OK, or fails with an assertion)
"""
import sys

from georeport import GeoReport

root, case_no, service_code = sys.argv[1], sys.argv[2], sys.argv[3]
for fmt in ("json", "xml"):
    client = GeoReport(root, jurisdiction="demo", output_format=fmt)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert service_code in codes, (fmt, codes)
    assert len(codes) == 22, (fmt, len(codes))
    one = next(s for s in services if s["service_code"] == service_code)
    assert one["group"] and one["service_name"], (fmt, one)
    definition = client.get_service_definition(service_code)
    assert definition["service_code"] == service_code, (fmt, definition)
    requests = client.get_service_requests(service_request_id=case_no)
    # xmltodict gives a single element as a record, a list otherwise
    if isinstance(requests, dict):
        requests = [requests]
    assert [r["service_request_id"] for r in requests] == [case_no], (fmt, requests)
    assert requests[0]["status"] in ("open", "closed"), (fmt, requests)
    mine = client.get_service_request(case_no)
    assert mine["service_request_id"] == case_no and mine["service_code"] == service_code, (fmt, mine)
    recent = client.get_service_requests(status="open")
    if isinstance(recent, dict):
        recent = [recent]
    assert case_no in [r["service_request_id"] for r in recent], (fmt, recent)
print("OK")
