"""placeholder"""
import json, os
class _C: workers=2
def from_environment():
    return _C()
