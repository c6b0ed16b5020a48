"""The one "pick one of these names" check every option goes through."""
import pytest

from fer_utils.choices import check_choice


def test_check_choice_lists_the_valid_names_sorted_whatever_holds_them():
    check_choice("layout", "csv", ("auto", "csv"))  # a valid name passes silently
    for valid in (("b", "a"), {"b": 1, "a": 2}, {"a", "b"}):
        with pytest.raises(ValueError, match=r"^unknown layout 'c'; valid: a, b$"):
            check_choice("layout", "c", valid)
    with pytest.raises(ValueError, match=r"^unknown num_classes 9; valid: 7, 8, 10$"):
        check_choice("num_classes", 9, (10, 8, 7))  # numbers in numeric order


def test_check_choice_refuses_an_unhashable_value_in_one_line():
    with pytest.raises(ValueError, match=r"^unknown backbone \['resnet18'\]; valid: a, b$"):
        check_choice("backbone", ["resnet18"], {"a": 1, "b": 2})
