"""fer_utils: imbalance-aware losses for facial expression recognition.

Reimplements paper W (weighted-cluster loss, SE-ResNet-50 on AffectNet; Sensors 2020)
and paper F (two-stage cross-entropy -> focal loss; ICANN 2019) over one training
loop, with the metrics, backbones and datasets the study needs.
"""
__version__ = "0.1.0"
