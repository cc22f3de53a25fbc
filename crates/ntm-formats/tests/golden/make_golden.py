"""Write RecordIO-protobuf golden files with the SageMaker Python SDK's own writers.

Run with an environment that has `sagemaker<3`, numpy and scipy installed (SDK v3 record
writers raise NotImplementedError):

    python make_golden.py            # writes the *.rec files and expected.json here
    python make_golden.py --check F  # reads F with the SDK's read_records, prints its rows

Last run: sagemaker 2.257.7, numpy 2.4.6, scipy 1.17.1, Python 3.11. The check of ntm's
writer went as follows: `NTM_GOLDEN_OUT=/tmp/ntm_written.rec cargo test -p ntm-formats
--test records sdk_reads_ntm_writer_output` wrote 3 sparse rows of width 6, and
`python make_golden.py --check /tmp/ntm_written.rec` printed, through the SDK's
read_records:

    [1, 4] [2.0, 1.0] [6]
    [0] [7.0] [6]
    [2, 3, 5] [1.0, 1.0, 3.5] [6]

which are the keys, values and shape of the rows the test wrote.
"""

import io
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse
from sagemaker.amazon.common import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

HERE = Path(__file__).resolve().parent

# One row is all zeros, so the sparse writer emits a record with no keys and no values.
COUNTS = np.array(
    [
        [1, 0, 2, 0, 0, 3],
        [0, 0, 0, 0, 0, 0],
        [4, 5, 0, 0, 6, 0],
        [0, 0, 0, 7, 0, 1],
    ]
)
FRACTIONAL = np.array([[0.5, 0.0, 1.25], [0.0, 2.75, 0.0]])


def write(name, writer, array):
    buffer = io.BytesIO()
    writer(buffer, array)
    (HERE / name).write_bytes(buffer.getvalue())


def rows_of(matrix):
    dense = np.asarray(matrix.todense() if scipy.sparse.issparse(matrix) else matrix)
    return [[float(v) for v in row] for row in dense]


def make():
    cases = {
        "dense_float32.rec": (write_numpy_to_dense_tensor, COUNTS.astype(np.float32)),
        "dense_float64.rec": (write_numpy_to_dense_tensor, FRACTIONAL.astype(np.float64)),
        "dense_int.rec": (write_numpy_to_dense_tensor, COUNTS.astype(int)),
        "sparse_float32.rec": (
            write_spmatrix_to_sparse_tensor,
            scipy.sparse.csr_matrix(COUNTS.astype(np.float32)),
        ),
        "sparse_float64.rec": (
            write_spmatrix_to_sparse_tensor,
            scipy.sparse.csr_matrix(FRACTIONAL.astype(np.float64)),
        ),
        "sparse_int.rec": (
            write_spmatrix_to_sparse_tensor,
            scipy.sparse.csr_matrix(COUNTS.astype(int)),
        ),
    }
    expected = {}
    for name, (writer, array) in cases.items():
        write(name, writer, array)
        expected[name] = {"feature_dim": int(array.shape[1]), "rows": rows_of(array)}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


def check(path):
    with open(path, "rb") as f:
        records = read_records(f)
    for record in records:
        tensor = record.features["values"].float32_tensor
        print(list(tensor.keys), list(tensor.values), list(tensor.shape))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        make()
