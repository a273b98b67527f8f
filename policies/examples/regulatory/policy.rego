package regulatory

default compliant = false

compliant { input.model.explainability_provided == true; input.model.bias_test_passed == true }
