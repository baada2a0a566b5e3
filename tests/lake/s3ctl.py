#!/usr/bin/env python3
"""The S3 side of the lake tests (tests/util/s3.rs runs it): boto3 against the endpoint in
AWS_ENDPOINT_URL with the keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

  s3ctl.py bucket BUCKET            create BUCKET (no error when it exists)
  s3ctl.py list BUCKET PREFIX       JSON list of {key, size, etag, last_modified} under PREFIX
  s3ctl.py get BUCKET KEY FILE      write the object's bytes to FILE (exit 3: no such key)
  s3ctl.py put BUCKET KEY FILE      upload FILE's bytes as KEY
  s3ctl.py dump BUCKET DIR [PREFIX] every object (under PREFIX) to DIR/<key>
  s3ctl.py load BUCKET DIR          every file under DIR back as <relative path>
  s3ctl.py iam-user NAME            an IAM user allowed everything, and an access key for it:
                                    JSON {"id": ..., "secret": ...} (moto with auth on)

Errors: exit 1 with the botocore error on stderr.
"""
import json
import os
import sys

import boto3
import botocore.config
import botocore.exceptions


def client(service):
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(
            retries={"max_attempts": 1}, s3={"addressing_style": "path"}
        ),
    )


def objects(s3, bucket, prefix):
    # The whole bucket, filtered here: with auth on, moto 5.2 rejects the signature of a
    # listing with a Prefix parameter (and the test buckets are small).
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            if o["Key"].startswith(prefix):
                yield o


def main(argv):
    op, args = argv[1], argv[2:]
    if op == "iam-user":
        iam = client("iam")
        (name,) = args
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
        return
    s3 = client("s3")
    if op == "bucket":
        (bucket,) = args
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    elif op == "list":
        bucket, prefix = args
        out = [
            {
                "key": o["Key"],
                "size": o["Size"],
                "etag": o["ETag"].strip('"'),
                "last_modified": o["LastModified"].isoformat(),
            }
            for o in objects(s3, bucket, prefix)
        ]
        print(json.dumps(out))
    elif op == "get":
        bucket, key, path = args
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            sys.exit(3)
        with open(path, "wb") as f:
            f.write(body)
    elif op == "put":
        bucket, key, path = args
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f.read())
    elif op == "dump":
        bucket, root, prefix = (args + [""])[:3]
        for o in objects(s3, bucket, prefix):
            path = os.path.join(root, o["Key"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    elif op == "load":
        bucket, root = args
        for d, _, files in os.walk(root):
            for name in files:
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    s3.put_object(
                        Bucket=bucket, Key=os.path.relpath(path, root), Body=f.read()
                    )
    else:
        sys.exit(f"s3ctl.py: unknown operation {op!r}\n{__doc__}")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except botocore.exceptions.BotoCoreError as e:
        sys.exit(f"s3ctl.py {' '.join(sys.argv[1:])}: {e}")
    except botocore.exceptions.ClientError as e:
        sys.exit(f"s3ctl.py {' '.join(sys.argv[1:])}: {e}")
