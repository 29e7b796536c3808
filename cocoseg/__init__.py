"""cocoseg: a local studio for semantic segmentation of COCO-format datasets.

The one import root: ``cli`` (commands) sits above ``app`` (the Dash UI), which sits above
``pipeline`` (data, preparation, training, inference, annotation, jobs), which sits above
``models`` (Keras architectures). ``tests/test_import_contract.py`` holds the line.
"""
