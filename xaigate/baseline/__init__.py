"""The merge gate against the released model: regression of each metric and explanation drift.

`source` says where the baseline's figures come from (the model, or a stored snapshot),
`regression` compares a case's values with the baseline's, `snapshot` stores and checks
snapshots; the drift checks live with the other checks (xaigate/checks/drift.py).
"""
