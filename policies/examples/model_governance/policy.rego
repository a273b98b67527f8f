package model_governance

default allow = false

allow { input.model.accuracy >= 0.85; input.model.bias < 0.1 }
