"""PLACEHOLDER"""
def trajectory_to_dataset(traj, batch_dims): raise NotImplementedError
