using MambaAD.Data;

namespace MambaAD.Tests.Data;

public class DatasetTests
{
    [Fact]
    public void Mvtec_style_multi_class_union_and_test_samples()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        d.MvtecClass("carpet");
        var ds = Dataset.Open(d.Root);
        Assert.Equal("mvtec", ds.Layout);
        Assert.Equal(["carpet", "bottle"], ds.ClassNames); // official MVTec order
        Assert.Equal(6, ds.Train.Count);
        Assert.All(ds.Train, s => Assert.False(s.IsFolderAnomalous));
        Assert.Equal(8, ds.Test.Count);
        var defect = ds.Test.First(s => s.IsFolderAnomalous);
        Assert.Equal("scratch", defect.DefectType);
        Assert.EndsWith(Path.Combine("ground_truth", "scratch", "000_mask.png"), defect.MaskPath);
        var only = Dataset.Open(d.Root, new DatasetOptions(Classes: ["bottle"]));
        Assert.Equal(["bottle"], only.ClassNames);
        Assert.All(only.Test, s => Assert.Equal("bottle", s.ClassName));
        var e = Assert.Throws<MambaADException>(() => Dataset.Open(d.Root, new DatasetOptions(Classes: ["nope"])));
        Assert.Contains("carpet, bottle", e.Message);
    }

    [Fact]
    public void Single_class_without_class_level_and_without_masks()
    {
        using var d = new TinyData("tile");
        d.MvtecClass("x", masks: false);
        var ds = Dataset.Open(d.P("x"));
        Assert.Equal("folder", ds.Layout);
        Assert.Equal(["x"], ds.ClassNames);
        Assert.All(ds.Test.Where(s => s.IsFolderAnomalous), s => Assert.Null(s.MaskPath));
    }

    [Fact]
    public void Btad_pairs_masks_by_sorted_index()
    {
        using var d = new TinyData("btad");
        d.MvtecClass("01", masks: false, normal: "ok", defect: "ko");
        // masks with another extension and other names: only the sorted order pairs them
        TinyData.WriteMask(d.P("01", "ground_truth", "ko", "a.png"), 40, 30, 0, 0, 5, 5);
        TinyData.WriteMask(d.P("01", "ground_truth", "ko", "b.png"), 40, 30, 0, 0, 5, 5);
        var ds = Dataset.Open(d.Root);
        Assert.Equal("btad", ds.Layout);
        var ko = ds.Test.Where(s => s.IsFolderAnomalous).ToList();
        Assert.Equal(["a.png", "b.png"], ko.Select(s => Path.GetFileName(s.MaskPath!)));
        Assert.Equal(2, ds.Test.Count(s => s.DefectType == "good"));
    }

    [Fact]
    public void Mvtec3d_uses_rgb_and_gt_and_trains_on_validation_too()
    {
        using var d = new TinyData("mvtec3d");
        TinyData.WriteImage(d.P("bagel", "train", "good", "rgb", "000.png"), 20, 20);
        TinyData.WriteImage(d.P("bagel", "validation", "good", "rgb", "000.png"), 20, 20);
        TinyData.WriteImage(d.P("bagel", "test", "good", "rgb", "000.png"), 20, 20);
        TinyData.WriteImage(d.P("bagel", "test", "crack", "rgb", "000.png"), 20, 20);
        TinyData.WriteMask(d.P("bagel", "test", "crack", "gt", "000.png"), 20, 20, 1, 1, 5, 5);
        var ds = Dataset.Open(d.Root);
        Assert.Equal("mvtec3d", ds.Layout);
        Assert.Equal(2, ds.Train.Count);
        Assert.EndsWith(Path.Combine("crack", "gt", "000.png"), ds.Test.Single(s => s.IsFolderAnomalous).MaskPath);
    }

    [Fact]
    public void Visa_split_csv()
    {
        using var d = new TinyData("visa");
        TinyData.WriteImage(d.P("candle", "Data", "Images", "Normal", "000.JPG"), 20, 20);
        TinyData.WriteImage(d.P("candle", "Data", "Images", "Anomaly", "000.JPG"), 20, 20);
        TinyData.WriteMask(d.P("candle", "Data", "Masks", "Anomaly", "000.png"), 20, 20, 1, 1, 4, 4);
        Directory.CreateDirectory(d.P("split_csv"));
        File.WriteAllLines(d.P("split_csv", "1cls.csv"), [
            "object,split,label,image,mask",
            "candle,train,normal,candle/Data/Images/Normal/000.JPG,",
            "candle,test,normal,candle/Data/Images/Normal/000.JPG,",
            "candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png",
        ]);
        var ds = Dataset.Open(d.Root);
        Assert.Equal("visa", ds.Layout);
        Assert.Single(ds.Train);
        Assert.Equal(2, ds.Test.Count);
        Assert.NotNull(ds.Test.Single(s => s.IsFolderAnomalous).MaskPath);
    }

    [Fact]
    public void Ader_meta_json_keeps_key_order()
    {
        using var d = new TinyData("meta");
        TinyData.WriteImage(d.P("z", "a.png"), 10, 10);
        File.WriteAllText(d.P("meta.json"), """
            {"train": {"zeta": [{"img_path": "z/a.png", "mask_path": "", "cls_name": "zeta", "specie_name": "", "anomaly": 0}],
                       "alpha": [{"img_path": "z/a.png", "mask_path": "", "cls_name": "alpha", "specie_name": "", "anomaly": 0}]},
             "test": {"zeta": [{"img_path": "z/a.png", "mask_path": "z/a.png", "cls_name": "zeta", "specie_name": "hole", "anomaly": 1}],
                      "alpha": [{"img_path": "z/a.png", "mask_path": "", "cls_name": "alpha", "specie_name": "good", "anomaly": 0}]}}
            """);
        var ds = Dataset.Open(d.Root);
        Assert.Equal("meta", ds.Layout);
        Assert.Equal(["zeta", "alpha"], ds.ClassNames);
        Assert.Equal("hole", ds.Test.First().DefectType);
    }

    [Fact]
    public void Real_iad_per_class_json()
    {
        using var d = new TinyData("realiad");
        TinyData.WriteImage(d.P("realiad_1024", "toy", "OK", "a.jpg"), 10, 10);
        TinyData.WriteImage(d.P("realiad_1024", "toy", "NG", "b.jpg"), 10, 10);
        TinyData.WriteMask(d.P("realiad_1024", "toy", "NG", "b.png"), 10, 10, 0, 0, 3, 3);
        Directory.CreateDirectory(d.P("realiad_jsons"));
        File.WriteAllText(d.P("realiad_jsons", "toy.json"), """
            {"meta": {}, "train": [{"category": "toy", "anomaly_class": "OK", "image_path": "toy/OK/a.jpg", "mask_path": null}],
             "test": [{"category": "toy", "anomaly_class": "OK", "image_path": "toy/OK/a.jpg", "mask_path": null},
                      {"category": "toy", "anomaly_class": "AK", "image_path": "toy/NG/b.jpg", "mask_path": "toy/NG/b.png"}]}
            """);
        var ds = Dataset.Open(d.Root);
        Assert.Equal("realiad", ds.Layout);
        Assert.Equal(["toy"], ds.ClassNames);
        var ng = ds.Test.Single(s => s.IsFolderAnomalous);
        Assert.Equal("AK", ng.DefectType);
        Assert.True(File.Exists(ng.MaskPath));
    }

    [Fact]
    public void Unknown_layout_lists_what_was_found_and_what_is_read()
    {
        using var d = new TinyData("weird");
        File.WriteAllText(d.P("readme.txt"), "x");
        Directory.CreateDirectory(d.P("images"));
        var e = Assert.Throws<MambaADException>(() => Dataset.Open(d.Root));
        Assert.Contains("unknown dataset layout", e.Message);
        Assert.Contains("images/", e.Message);
        Assert.Contains("readme.txt", e.Message);
        Assert.Contains("split_csv/1cls.csv", e.Message);
    }

    [Fact]
    public void Defect_image_without_its_mask_is_named_or_skipped()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        File.Delete(d.P("bottle", "ground_truth", "scratch", "001_mask.png"));
        var e = Assert.Throws<MambaADException>(() => Dataset.Open(d.Root));
        Assert.Contains(Path.Combine("scratch", "001.png"), e.Message);
        Assert.Contains("001_mask.png", e.Message);
        var ds = Dataset.Open(d.Root, new DatasetOptions(SkipBad: true));
        Assert.Single(ds.Warnings);
        Assert.Equal(3, ds.Test.Count);
    }

    [Fact]
    public void Dataset_option_overrides_detection_and_names_what_is_missing()
    {
        using var d = new TinyData("anything");
        d.MvtecClass("bottle");
        Assert.Equal("mpdd", Dataset.Open(d.Root, new DatasetOptions(Layout: "MPDD")).Layout);
        Assert.Contains("1cls.csv: not found", Assert.Throws<MambaADException>(() => Dataset.Open(d.Root, new DatasetOptions(Layout: "visa"))).Message);
        Assert.Contains("meta.json: not found", Assert.Throws<MambaADException>(() => Dataset.Open(d.Root, new DatasetOptions(Layout: "meta"))).Message);
        Assert.Contains("dataset layout 'coco' is unknown; the layouts are meta, visa", Assert.Throws<MambaADException>(() => Dataset.Open(d.Root, new DatasetOptions(Layout: "coco"))).Message);
    }

    [Fact]
    public void Empty_class_is_an_error()
    {
        using var d = new TinyData("mvtec");
        d.MvtecClass("bottle");
        Directory.CreateDirectory(d.P("cable", "train", "good"));
        Directory.CreateDirectory(d.P("cable", "test", "good"));
        var e = Assert.Throws<MambaADException>(() => Dataset.Open(d.Root));
        Assert.Contains("'cable' is empty", e.Message);
    }
}
