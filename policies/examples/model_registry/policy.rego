package model_registry

default allow = false

allow { input.accuracy >= 0.95; input.bias <= 0.05; input.model_type == "classification" }
