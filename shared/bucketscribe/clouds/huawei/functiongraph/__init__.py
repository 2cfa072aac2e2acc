"""FunctionGraph entry points (Huawei Cloud): the same use cases as the Lambda ones, fed the
events FunctionGraph's OBS, APIG and timer triggers send, with its context object adapted."""
