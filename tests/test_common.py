"""scikit-learn's own estimator checks on ContinualClassifier."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cf import ContinualClassifier

# Every check that is expected to fail, with the reason. Keep this short.
EXPECTED_FAILED_CHECKS = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and "
        "virtual_params_; they are skorch's bookkeeping, not learned state."
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "Equivalent up to float32 rounding (largest difference 6e-8, one unit in "
        "the last place), but the check's rtol=1e-7 is below float32's epsilon. "
        "tests/test_weights.py checks weight 2 == the row twice at 1e-6."
    ),
}


def _fast_estimator():
    return ContinualClassifier(hidden_units=(16,), max_epochs=10, lr=1e-2, batch_size=64,
                               random_state=0)


# skorch validates some parameters eagerly in set_params; sklearn warns about
# that in check_set_params, which still passes.
@pytest.mark.filterwarnings("ignore:.*occurred during set_params:UserWarning")
@pytest.mark.filterwarnings("ignore:Estimator's parameters changed:UserWarning")
@parametrize_with_checks(
    [_fast_estimator()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
