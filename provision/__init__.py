"""seymour-provision: the AWS side of a Seymour deployment (home + one runner per region), with boto3."""
