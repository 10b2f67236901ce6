"""Programs that verify an answer (IFEval's instruction checkers): used as a feedback judge
(judges/verifier.py) and as an evaluation (eval/suite.py)."""
