"""Session fixture that runs a real moto server on 127.0.0.1 (written with the ec2 plugin)."""
