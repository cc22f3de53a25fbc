"""SageMaker Python SDK v2 serializers and deserializers against a running `ntm serve`.

Every request is built by an SDK serializer and every response is read by an SDK
deserializer, exactly as a SageMaker endpoint client would. The requests go through urllib to
a server on the loopback interface. No Predictor or Session is created, so nothing reaches AWS.
The topic weights must equal the golden values that `ntm infer` wrote for the same rows.

Environment (set by scripts/sdk-tests.sh):
    NTM_SERVE_URL  base URL of the server, for example http://127.0.0.1:40123
    NTM_ROWS_CSV   the documents, one dense CSV row of counts per line
    NTM_GOLDEN     `ntm infer` output for those rows, one {"topic_weights": [...]} per line
"""

import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import scipy.sparse
from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor
from sagemaker.deserializers import (
    JSONDeserializer,
    JSONLinesDeserializer,
    RecordDeserializer,
)
from sagemaker.serializers import (
    CSVSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    RecordSerializer,
)

# JSON carries the shortest decimal form of each f32 and RecordIO the f32 itself, so both are
# expected to equal the golden values. The tolerance only absorbs the float64 view of a float32.
TOLERANCE = 1e-7


def server_url():
    url = os.environ["NTM_SERVE_URL"]
    host = urllib.parse.urlparse(url).hostname
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise RuntimeError(f"NTM_SERVE_URL must point at the loopback interface, got {url}")
    return url


def load_rows():
    with open(os.environ["NTM_ROWS_CSV"], encoding="utf-8") as rows_file:
        lines = [line for line in rows_file.read().splitlines() if line.strip()]
    return np.array([[float(cell) for cell in line.split(",")] for line in lines])


def load_golden():
    with open(os.environ["NTM_GOLDEN"], encoding="utf-8") as golden_file:
        return np.array([json.loads(line)["topic_weights"] for line in golden_file])


ROWS = load_rows()
GOLDEN = load_golden()


def invoke(body, content_type, accept):
    """POSTs one request to /invocations; returns the status, Content-Type and body."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif hasattr(body, "read"):
        body = body.read()
    headers = {"Accept": accept}
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        server_url() + "/invocations", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def sparse_instances(rows):
    instances = []
    for row in rows:
        keys = np.flatnonzero(row)
        instances.append(
            {
                "data": {
                    "features": {
                        "keys": keys.tolist(),
                        "values": row[keys].tolist(),
                        "shape": [len(row)],
                    }
                }
            }
        )
    return instances


def sparse_records(rows):
    """Writes the rows as sparse records, as the SageMaker NTM example notebook does."""
    buffer = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buffer, scipy.sparse.csr_matrix(rows.astype(np.float32)))
    return buffer.getvalue()


# Each request: a name, an SDK serializer, and a function that builds its input from the rows.
REQUESTS = [
    ("csv-array", CSVSerializer(), lambda rows: rows),
    ("csv-list", CSVSerializer(), lambda rows: rows.tolist()),
    (
        "json-dense",
        JSONSerializer(),
        lambda rows: {"instances": [{"features": row.tolist()} for row in rows]},
    ),
    (
        "json-values",
        JSONSerializer(),
        lambda rows: {
            "instances": [{"data": {"features": {"values": row.tolist()}}} for row in rows]
        },
    ),
    ("json-sparse", JSONSerializer(), lambda rows: {"instances": sparse_instances(rows)}),
    ("json-array", JSONSerializer(), lambda rows: rows),
    (
        "jsonlines-dense",
        JSONLinesSerializer(),
        lambda rows: [{"features": row.tolist()} for row in rows],
    ),
    ("jsonlines-sparse", JSONLinesSerializer(), sparse_instances),
    ("record-float32", RecordSerializer(), lambda rows: rows.astype(np.float32)),
    ("record-float64", RecordSerializer(), lambda rows: rows.astype(np.float64)),
    # The SDK has no sparse serializer: clients write the records themselves and send the
    # bytes unchanged with the RecordIO content type.
    (
        "record-sparse",
        IdentitySerializer(content_type="application/x-recordio-protobuf"),
        sparse_records,
    ),
]


def weights_from_json(result):
    return np.array([prediction["topic_weights"] for prediction in result["predictions"]])


def weights_from_json_lines(result):
    return np.array([line["topic_weights"] for line in result])


def weights_from_records(result):
    return np.array([list(record.label["topic_weights"].float32_tensor.values) for record in result])


# Each response: an SDK deserializer and the function that extracts the weights.
RESPONSES = [
    (JSONDeserializer(), weights_from_json),
    (JSONLinesDeserializer(), weights_from_json_lines),
    (RecordDeserializer(), weights_from_records),
]


@pytest.mark.parametrize("name, serializer, build", REQUESTS, ids=[r[0] for r in REQUESTS])
@pytest.mark.parametrize(
    "deserializer, extract", RESPONSES, ids=[type(r[0]).__name__ for r in RESPONSES]
)
def test_request_response_pair(name, serializer, build, deserializer, extract):
    body = serializer.serialize(build(ROWS))
    accept = deserializer.ACCEPT[0]
    status, content_type, payload = invoke(body, serializer.CONTENT_TYPE, accept)
    assert status == 200, payload.decode("utf-8", "replace")
    assert content_type == accept
    result = deserializer.deserialize(io.BytesIO(payload), content_type)
    weights = extract(result)
    assert weights.shape == GOLDEN.shape, f"{name}: {weights.shape} vs {GOLDEN.shape}"
    np.testing.assert_allclose(weights, GOLDEN, rtol=0, atol=TOLERANCE, err_msg=name)


def test_single_row_csv():
    body = CSVSerializer().serialize(ROWS[0])
    status, _, payload = invoke(body, "text/csv", "application/json")
    assert status == 200, payload
    weights = weights_from_json(json.loads(payload))
    np.testing.assert_allclose(weights, GOLDEN[:1], rtol=0, atol=TOLERANCE)


def test_weights_are_distributions():
    status, _, payload = invoke(CSVSerializer().serialize(ROWS), "text/csv", "application/json")
    assert status == 200, payload
    weights = weights_from_json(json.loads(payload))
    assert np.all(np.isfinite(weights))
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)


def test_identity_serializer_gets_415():
    # IdentitySerializer sends application/octet-stream, which NTM does not accept.
    serializer = IdentitySerializer()
    body = CSVSerializer().serialize(ROWS[:1]).encode("utf-8")
    status, content_type, payload = invoke(body, serializer.CONTENT_TYPE, "application/json")
    assert status == 415
    assert content_type == "application/json"
    message = json.loads(payload)["error"]
    for supported in ("text/csv", "application/json", "application/jsonlines",
                      "application/x-recordio-protobuf"):
        assert supported in message, message


def test_unsupported_accept_gets_406():
    body = CSVSerializer().serialize(ROWS[:1])
    status, _, payload = invoke(body, "text/csv", "text/html")
    assert status == 406
    message = json.loads(payload)["error"]
    assert "application/x-recordio-protobuf" in message, message


def test_wrong_width_gets_400():
    body = CSVSerializer().serialize(ROWS[:1, :-1])
    status, _, payload = invoke(body, "text/csv", "application/json")
    assert status == 400
    message = json.loads(payload)["error"]
    assert "line 1" in message, message
    assert f"{ROWS.shape[1] - 1} columns" in message, message
